//! The loop's table of tasks, a speed rule: a vector of slots, where a finished task's slot
//! goes to the next task created. A waker names its task by slot, so the loop finds the task
//! with one index, where a hash map would hash its number, probe, and scatter a batch of new
//! tasks over memory; tokio keeps its tasks in lists of its own for the same reason.

use std::fmt;
use std::rc::Rc;

use super::AnyTask;

/// What names a task: its number, which the trace shows, and its slot in the table. The number
/// tells the task from those that had the slot before it, whose wakers may live on.
#[derive(Clone, Copy)]
pub(crate) struct TaskId {
    number: u64,
    slot: usize,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number)
    }
}

/// The tasks not finished yet (asyncio's `_all_tasks`), by slot.
#[derive(Default)]
pub(crate) struct Tasks {
    slots: Vec<Option<(u64, Rc<dyn AnyTask>)>>,
    /// The empty slots; the one emptied last is taken first, while it is in the cache.
    free: Vec<usize>,
    /// How many tasks were ever created: the next task's number.
    created: u64,
}

impl Tasks {
    /// The id of a new task: the next number, and an empty slot, kept for it.
    pub(crate) fn new_id(&mut self) -> TaskId {
        let number = self.created;
        self.created += 1;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        TaskId { number, slot }
    }

    /// Keeps `task` in the slot of its id.
    pub(crate) fn insert(&mut self, id: TaskId, task: Rc<dyn AnyTask>) {
        self.slots[id.slot] = Some((id.number, task));
    }

    /// The task named `id`, if it is not finished (nor taken out by `take_all`).
    pub(crate) fn get(&self, id: TaskId) -> Option<&Rc<dyn AnyTask>> {
        match self.slots.get(id.slot) {
            Some(Some((number, task))) if *number == id.number => Some(task),
            _ => None,
        }
    }

    /// Takes the task named `id` out, if it is there, and frees its slot.
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Rc<dyn AnyTask>> {
        self.get(id)?;
        self.free.push(id.slot);
        self.slots[id.slot].take().map(|(_, task)| task)
    }

    /// Takes every task out; the numbering goes on.
    pub(crate) fn take_all(&mut self) -> Vec<Rc<dyn AnyTask>> {
        self.free.clear();
        let slots = std::mem::take(&mut self.slots);
        slots.into_iter().flatten().map(|(_, task)| task).collect()
    }

    /// The tasks, in the order of their slots.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Rc<dyn AnyTask>> {
        self.slots.iter().flatten().map(|(_, task)| task)
    }

    /// How many tasks there are.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}
