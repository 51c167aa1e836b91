//! The tables: a cell is the median of the rounds with their min–max, `812 (790–840)`, and the
//! ratio is the median of the rounds' own ratios, ours over tokio's, with their min–max.

/// Our loop, tokio's, asyncio, uvloop: the columns, in this order.
pub const CONTENDERS: usize = 4;

/// How a row's numbers read.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Nanoseconds, per operation.
    Ns,
    /// Operations per second.
    PerSecond,
    /// A share of one CPU's time, printed as a percentage.
    Share,
}

/// A row of samples, one per round and contender.
pub struct Row {
    name: String,
    unit: Unit,
    samples: [Vec<f64>; CONTENDERS],
    ratios: Vec<f64>,
}

impl Row {
    pub fn new(name: impl Into<String>, unit: Unit) -> Row {
        Row {
            name: name.into(),
            unit,
            samples: Default::default(),
            ratios: Vec::new(),
        }
    }

    /// One round's samples, from the contenders that have one.
    pub fn add(&mut self, round: [Option<f64>; CONTENDERS]) {
        for (samples, sample) in self.samples.iter_mut().zip(round) {
            samples.extend(sample);
        }
        // A user time of 0 (the kernel's sampling missed it) makes no ratio.
        if let [Some(ours), Some(tokio), ..] = round {
            if tokio > 0.0 {
                self.ratios.push(ours / tokio);
            }
        }
    }

    /// The row's name, our cell, tokio's, the ratio, then Python's cells.
    pub fn cells(&self) -> Vec<String> {
        let cell = |samples: &[f64]| match self.unit {
            Unit::Share => spread(samples, "%", |share| format!("{:.0}", share * 100.0)),
            Unit::Ns | Unit::PerSecond => spread(samples, "", number),
        };
        let mut cells = vec![
            self.name.clone(),
            cell(&self.samples[0]),
            cell(&self.samples[1]),
        ];
        cells.push(spread(&self.ratios, "x", |ratio| format!("{ratio:.2}")));
        cells.extend(self.samples[2..].iter().map(|samples| cell(samples)));
        cells
    }
}

/// `median (min–max)` of `samples`, each shown by `show`, the median followed by `unit`; "—"
/// for none.
fn spread(samples: &[f64], unit: &str, show: impl Fn(f64) -> String) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match &sorted[..] {
        [] => "—".into(),
        [only] => format!("{}{unit}", show(*only)),
        [min, .., max] => {
            let median = match sorted.len() % 2 {
                1 => sorted[middle],
                _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
            };
            format!("{}{unit} ({}–{})", show(median), show(*min), show(*max))
        }
    }
}

/// A number as the table shows it: thousands grouped, a decimal only below 100.
fn number(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{value:.0}");
    let mut grouped = String::new();
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Adds one round's samples to rows that one measure fills together: the `N` numbers that each
/// contender's measure gave, one per row.
pub fn add<const N: usize>(rows: &mut [Row; N], round: [Option<[f64; N]>; CONTENDERS]) {
    for (at, row) in rows.iter_mut().enumerate() {
        row.add(round.map(|sample| sample.map(|numbers| numbers[at])));
    }
}

/// Prints a Markdown table: its title, the header, then the rows, each cut to the header's
/// width (the web table has no Python columns).
pub fn print(title: &str, header: &[&str], rows: Vec<Vec<String>>) {
    println!("\n{title}\n");
    println!("| {} |", header.join(" | "));
    let rules: Vec<&str> = (0..header.len())
        .map(|column| if column == 0 { "---" } else { "---:" })
        .collect();
    println!("| {} |", rules.join(" | "));
    for row in &rows {
        println!("| {} |", row[..header.len()].join(" | "));
    }
}
