//! Wrong answers to the exercises, as a learner writes them, and the rule of `just check N` that
//! must catch each: `tests/mutants.rs` puts each in a copy of the workspace and runs the check.
//!
//! Each is a whole body for an exercise's function, as `just exercise N` leaves it to write, so
//! that a change to the step's code is met by rewriting a body here, in one place.

/// A wrong version of the function `function` of step `step`'s exercise.
pub struct Mutant {
    /// The step.
    pub step: u8,
    /// The function, as `just exercise` names it.
    pub function: &'static str,
    /// The mistake, in words.
    pub mistake: &'static str,
    /// The function's body, braces included.
    pub body: &'static str,
    /// The rule that must not hold: its test program and its test function.
    pub caught_by: (&'static str, &'static str),
    /// Whether the rule hangs rather than fails: `just check` reports it at its bound.
    pub hangs: bool,
}

/// Every wrong answer, step by step, function by function.
pub const MUTANTS: &[Mutant] = &[
    // Step 3: `call_soon` and `run_once`.
    Mutant {
        step: 3,
        function: "call_soon",
        mistake: "pushes at the front: the last callback scheduled runs first",
        body: r#"{
        self.check_closed();
        let handle = Handle::new(type_name_of_val(&callback), callback);
        self.inner.ready.borrow_mut().push_front(handle.clone());
        handle
    }"#,
        caught_by: (
            "callbacks",
            "callbacks_run_in_the_order_they_were_scheduled",
        ),
        hangs: false,
    },
    Mutant {
        step: 3,
        function: "call_soon",
        mistake: "forgets that a closed loop takes no more work",
        body: r#"{
        let handle = Handle::new(type_name_of_val(&callback), callback);
        self.inner.ready.borrow_mut().push_back(handle.clone());
        handle
    }"#,
        caught_by: (
            "callbacks",
            "close_drops_the_queued_callbacks_and_the_loop_refuses_more_work",
        ),
        hangs: false,
    },
    Mutant {
        step: 3,
        function: "run_once",
        mistake: "runs the callbacks scheduled during the iteration in the same iteration",
        body: r#"{
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        loop {
            let Some(handle) = self.inner.ready.borrow_mut().pop_front() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "callbacks",
            "a_callback_scheduled_during_an_iteration_runs_in_the_next_one",
        ),
        hangs: false,
    },
    Mutant {
        step: 3,
        function: "run_once",
        mistake: "pops from the back of the queue",
        body: r#"{
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.inner.ready.borrow_mut().pop_back() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "callbacks",
            "callbacks_run_in_the_order_they_were_scheduled",
        ),
        hangs: false,
    },
    Mutant {
        step: 3,
        function: "run_once",
        mistake: "keeps the queue borrowed while the callbacks run",
        body: r#"{
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        let ntodo = self.inner.ready.borrow().len();
        for handle in self.inner.ready.borrow_mut().drain(..ntodo) {
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "callbacks",
            "a_callback_scheduled_during_an_iteration_runs_in_the_next_one",
        ),
        hangs: false,
    },
    Mutant {
        step: 3,
        function: "run_once",
        mistake: "forgets to count the iteration",
        body: r#"{
        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.inner.ready.borrow_mut().pop_front() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "demos",
            "step3_traces_each_callback_by_its_name_in_one_iteration",
        ),
        hangs: false,
    },
    // Step 4: `call_at`, `timeout` and `run_once`.
    Mutant {
        step: 4,
        function: "call_at",
        mistake: "schedules the timer for now, whatever its deadline",
        body: r#"{
        self.check_closed();
        let handle = Handle::new(type_name_of_val(&callback), callback);
        let name = Name(handle.inner.name);
        let timer = self.inner.scheduled.borrow_mut().push(self.time(), handle);
        self.trace(format_args!("timer {name} due in {}", Until(when)));
        timer
    }"#,
        caught_by: ("timers", "timers_run_in_deadline_order"),
        hangs: false,
    },
    Mutant {
        step: 4,
        function: "call_at",
        mistake: "forgets that a closed loop takes no more work",
        body: r#"{
        let handle = Handle::new(type_name_of_val(&callback), callback);
        let name = Name(handle.inner.name);
        let timer = self.inner.scheduled.borrow_mut().push(when, handle);
        self.trace(format_args!("timer {name} due in {}", Until(when)));
        timer
    }"#,
        caught_by: (
            "timers",
            "close_drops_the_scheduled_timers_and_the_loop_refuses_more",
        ),
        hangs: false,
    },
    Mutant {
        step: 4,
        function: "timeout",
        mistake: "sleeps until the next timer, or forever, with callbacks ready",
        body: r#"{
        if self.inner.stopping.get() {
            return Some(Duration::ZERO);
        }
        let next = self.inner.scheduled.borrow_mut().next_deadline()?;
        Some(next.saturating_duration_since(self.time()))
    }"#,
        caught_by: ("timers", "a_callback_can_schedule_timers_and_stop_from_one"),
        hangs: true,
    },
    Mutant {
        step: 4,
        function: "timeout",
        mistake: "forgets that a stopping loop must not wait",
        body: r#"{
        if !self.inner.ready.borrow().is_empty() {
            return Some(Duration::ZERO);
        }
        let next = self.inner.scheduled.borrow_mut().next_deadline()?;
        Some(next.saturating_duration_since(self.time()))
    }"#,
        caught_by: ("callbacks", "stop_before_run_forever_runs_one_iteration"),
        hangs: true,
    },
    Mutant {
        step: 4,
        function: "timeout",
        mistake: "forgets the timers: with nothing ready, it waits forever",
        body: r#"{
        if !self.inner.ready.borrow().is_empty() || self.inner.stopping.get() {
            return Some(Duration::ZERO);
        }
        None
    }"#,
        caught_by: ("timers", "timers_run_in_deadline_order"),
        hangs: true,
    },
    Mutant {
        step: 4,
        function: "run_once",
        mistake: "moves one due timer per iteration",
        body: r#"{
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        self.inner.scheduled.borrow_mut().purge_cancelled();
        self.wait(self.timeout());
        if let Some(handle) = self.pop_due(self.time()) {
            self.trace(format_args!("timer {} is due", Name(handle.inner.name)));
            self.inner.ready.borrow_mut().push_back(handle);
        }
        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.inner.ready.borrow_mut().pop_front() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "timers",
            "timers_due_together_run_in_one_iteration_before_what_they_schedule",
        ),
        hangs: false,
    },
    Mutant {
        step: 4,
        function: "run_once",
        mistake: "puts due timers at the front of the ready queue",
        body: r#"{
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        self.inner.scheduled.borrow_mut().purge_cancelled();
        self.wait(self.timeout());
        let now = self.time();
        while let Some(handle) = self.pop_due(now) {
            self.trace(format_args!("timer {} is due", Name(handle.inner.name)));
            self.inner.ready.borrow_mut().push_front(handle);
        }
        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.inner.ready.borrow_mut().pop_front() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "timers",
            "a_timer_in_the_past_runs_in_the_next_iteration_after_ready_callbacks",
        ),
        hangs: false,
    },
    Mutant {
        step: 4,
        function: "run_once",
        mistake: "forgets to purge the cancelled timers",
        body: r#"{
        self.inner.iteration.set(self.inner.iteration.get() + 1);
        self.wait(self.timeout());
        let now = self.time();
        while let Some(handle) = self.pop_due(now) {
            self.trace(format_args!("timer {} is due", Name(handle.inner.name)));
            self.inner.ready.borrow_mut().push_back(handle);
        }
        let ntodo = self.inner.ready.borrow().len();
        for _ in 0..ntodo {
            let Some(handle) = self.inner.ready.borrow_mut().pop_front() else {
                break;
            };
            if handle.cancelled() {
                continue;
            }
            self.trace(format_args!("run {}", Name(handle.inner.name)));
            handle.run();
        }
    }"#,
        caught_by: (
            "timers",
            "cancelled_timers_are_purged_once_they_are_most_of_the_heap",
        ),
        hangs: false,
    },
    // Step 5: `finish`, `add_done_callback` and `sleep`.
    Mutant {
        step: 5,
        function: "finish",
        mistake: "runs the done callbacks at once, inline",
        body: r#"{
        if self.done() {
            return Err(Error::AlreadyDone);
        }
        *self.inner.state.borrow_mut() = outcome;
        for (_, callback) in self.inner.callbacks.take() {
            callback(self);
        }
        Ok(())
    }"#,
        caught_by: (
            "futures",
            "done_callbacks_are_scheduled_in_order_never_called_inline",
        ),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "finish",
        mistake: "lets a second outcome replace the first",
        body: r#"{
        *self.inner.state.borrow_mut() = outcome;
        for (name, callback) in self.inner.callbacks.take() {
            self.schedule(name, callback);
        }
        Ok(())
    }"#,
        caught_by: ("futures", "a_future_goes_from_pending_to_finished_once"),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "finish",
        mistake: "schedules the done callbacks last added first",
        body: r#"{
        if self.done() {
            return Err(Error::AlreadyDone);
        }
        *self.inner.state.borrow_mut() = outcome;
        for (name, callback) in self.inner.callbacks.take().into_iter().rev() {
            self.schedule(name, callback);
        }
        Ok(())
    }"#,
        caught_by: (
            "futures",
            "done_callbacks_are_scheduled_in_order_never_called_inline",
        ),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "finish",
        mistake: "stores the outcome and forgets the done callbacks",
        body: r#"{
        if self.done() {
            return Err(Error::AlreadyDone);
        }
        *self.inner.state.borrow_mut() = outcome;
        Ok(())
    }"#,
        caught_by: ("futures", "cancelling_schedules_the_done_callbacks"),
        hangs: true,
    },
    Mutant {
        step: 5,
        function: "add_done_callback",
        mistake: "keeps a callback added to a done future, which then never runs",
        body: r#"{
        let name = type_name_of_val(&callback);
        self.inner
            .callbacks
            .borrow_mut()
            .push((name, Box::new(callback)));
    }"#,
        caught_by: (
            "futures",
            "a_callback_added_to_a_done_future_is_scheduled_too",
        ),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "add_done_callback",
        mistake: "calls a callback added to a done future at once, inline",
        body: r#"{
        let name = type_name_of_val(&callback);
        if self.done() {
            callback(self);
        } else {
            self.inner
                .callbacks
                .borrow_mut()
                .push((name, Box::new(callback)));
        }
    }"#,
        caught_by: (
            "futures",
            "a_callback_added_to_a_done_future_is_scheduled_too",
        ),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "add_done_callback",
        mistake: "schedules the callback at once, even while the future is pending",
        body: r#"{
        let name = type_name_of_val(&callback);
        self.schedule(name, Box::new(callback));
    }"#,
        caught_by: ("futures", "cancelling_schedules_the_done_callbacks"),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "sleep",
        mistake: "ignores the delay: the future finishes in the next iteration",
        body: r#"{
    let future = event_loop.create_future();
    let sleeper = future.clone();
    event_loop.call_soon(move || {
        let _ = sleeper.set_result(());
    });
    let _ = delay;
    future
}"#,
        caught_by: ("futures", "sleeps_finish_in_deadline_order"),
        hangs: false,
    },
    Mutant {
        step: 5,
        function: "sleep",
        mistake: "unwraps the result it sets: a sleep cancelled meanwhile panics",
        body: r#"{
    let future = event_loop.create_future();
    let sleeper = future.clone();
    event_loop.call_later(delay, move || sleeper.set_result(()).unwrap());
    future
}"#,
        caught_by: (
            "futures",
            "a_cancelled_sleep_stays_cancelled_when_its_timer_fires",
        ),
        hangs: false,
    },
    // Step 6: `watch` and `wait`.
    Mutant {
        step: 6,
        function: "watch",
        mistake: "registers the descriptor at every watch, instead of modifying it",
        body: r#"{
        self.check_closed();
        let fd = source.as_fd().as_raw_fd();
        self.selector().register(source, direction)?;
        let watch = Watch {
            name,
            callback,
            queued: None,
        };
        let _replaced = self.watches(direction).borrow_mut().insert(fd, watch);
        self.trace(format_args!("add_{} fd {fd} {}", Direction(direction), Name(name)));
        Ok(())
    }"#,
        caught_by: (
            "select",
            "a_reader_and_a_writer_of_one_descriptor_both_run_the_reader_first",
        ),
        hangs: false,
    },
    Mutant {
        step: 6,
        function: "watch",
        mistake: "drops the watch it replaces while the map is still borrowed",
        body: r#"{
        self.check_closed();
        let fd = source.as_fd().as_raw_fd();
        let watched = self.watched(fd);
        if watched.is_empty() {
            self.selector().register(source, direction)?;
        } else if watched | direction != watched {
            self.selector().modify(fd, watched | direction)?;
        }
        let watch = Watch {
            name,
            callback,
            queued: None,
        };
        self.watches(direction).borrow_mut().insert(fd, watch);
        self.trace(format_args!("add_{} fd {fd} {}", Direction(direction), Name(name)));
        Ok(())
    }"#,
        caught_by: (
            "select",
            "a_replaced_callback_may_use_the_loop_as_it_is_dropped",
        ),
        hangs: false,
    },
    Mutant {
        step: 6,
        function: "watch",
        mistake: "remembers the watch before it asks the selector, which then hears nothing",
        body: r#"{
        self.check_closed();
        let fd = source.as_fd().as_raw_fd();
        let watch = Watch {
            name,
            callback,
            queued: None,
        };
        let _replaced = self.watches(direction).borrow_mut().insert(fd, watch);
        let watched = self.watched(fd);
        if watched.is_empty() {
            self.selector().register(source, direction)?;
        } else if watched | direction != watched {
            self.selector().modify(fd, watched | direction)?;
        }
        self.trace(format_args!("add_{} fd {fd} {}", Direction(direction), Name(name)));
        Ok(())
    }"#,
        caught_by: (
            "select",
            "a_reader_runs_each_time_the_descriptor_is_ready_until_removed",
        ),
        hangs: true,
    },
    Mutant {
        step: 6,
        function: "wait",
        mistake: "schedules a descriptor's writer before its reader",
        body: r#"{
        let (readers, writers) = (Fds(&self.inner.readers), Fds(&self.inner.writers));
        let shown = Timeout(timeout);
        self.trace(format_args!("select read={readers} write={writers} timeout={shown}"));
        let ready = self.selector().select(timeout);
        let ready = ready.unwrap_or_else(|error| panic!("the selector failed: {error}"));
        self.trace(format_args!("select -> {}", Answer(&ready)));
        for (fd, events) in ready {
            if events.write {
                self.schedule_watch(&self.inner.writers, fd);
            }
            if events.read {
                self.schedule_watch(&self.inner.readers, fd);
            }
        }
    }"#,
        caught_by: (
            "select",
            "a_reader_and_a_writer_of_one_descriptor_both_run_the_reader_first",
        ),
        hangs: false,
    },
    Mutant {
        step: 6,
        function: "wait",
        mistake: "calls the callbacks inside the wait instead of scheduling them",
        body: r#"{
        let (readers, writers) = (Fds(&self.inner.readers), Fds(&self.inner.writers));
        let shown = Timeout(timeout);
        self.trace(format_args!("select read={readers} write={writers} timeout={shown}"));
        let ready = self.selector().select(timeout);
        let ready = ready.unwrap_or_else(|error| panic!("the selector failed: {error}"));
        self.trace(format_args!("select -> {}", Answer(&ready)));
        for (fd, events) in ready {
            for (wanted, map) in [(events.read, &self.inner.readers), (events.write, &self.inner.writers)] {
                let callback = map.borrow().get(&fd).map(|watch| Rc::clone(&watch.callback));
                if let (true, Some(callback)) = (wanted, callback) {
                    callback();
                }
            }
        }
    }"#,
        caught_by: ("select", "spurious_readiness_is_harmless"),
        hangs: false,
    },
    Mutant {
        step: 6,
        function: "wait",
        mistake: "waits for a descriptor with no timeout, whatever the timers say",
        body: r#"{
        let (readers, writers) = (Fds(&self.inner.readers), Fds(&self.inner.writers));
        self.trace(format_args!("select read={readers} write={writers} timeout={}", Timeout(None)));
        let _ = timeout;
        let ready = self.selector().select(None);
        let ready = ready.unwrap_or_else(|error| panic!("the selector failed: {error}"));
        self.trace(format_args!("select -> {}", Answer(&ready)));
        for (fd, events) in ready {
            if events.read {
                self.schedule_watch(&self.inner.readers, fd);
            }
            if events.write {
                self.schedule_watch(&self.inner.writers, fd);
            }
        }
    }"#,
        caught_by: ("timers", "timers_run_in_deadline_order"),
        hangs: true,
    },
    // Step 7: `wakeup`, `schedule_woken_tasks` and `poll_done`.
    Mutant {
        step: 7,
        function: "wakeup",
        mistake: "schedules a step at every wake: a task woken twice steps twice",
        body: r#"{
        self.scheduled.set(true);
        let event_loop = self.event_loop.clone();
        event_loop.call_soon_step(self);
    }"#,
        caught_by: ("tasks", "a_task_woken_twice_before_it_runs_is_stepped_once"),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "wakeup",
        mistake: "steps the task at once instead of scheduling the step",
        body: r#"{
        if !self.scheduled.replace(true) {
            self.step();
        }
    }"#,
        caught_by: ("tasks", "a_task_drives_an_async_fn_to_its_output"),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "wakeup",
        mistake: "schedules the step with call_soon: the trace names the loop's closure",
        body: r#"{
        if !self.scheduled.replace(true) {
            let event_loop = self.event_loop.clone();
            event_loop.call_soon(move || self.step());
        }
    }"#,
        caught_by: (
            "demos",
            "step7_traces_each_task_step_its_outcome_and_who_woke_it",
        ),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "schedule_woken_tasks",
        mistake: "takes the woken tasks out of the inbox, and never wakes them",
        body: r#"{
        if let Some(inbox) = self.inner.inbox.get() {
            drop(inbox.take_woken());
        }
    }"#,
        caught_by: (
            "tasks",
            "a_wake_from_another_thread_reaches_a_loop_asleep_in_select",
        ),
        hangs: true,
    },
    Mutant {
        step: 7,
        function: "schedule_woken_tasks",
        mistake: "wakes every task of the loop, woken or not",
        body: r#"{
        let Some(inbox) = self.inner.inbox.get() else {
            return;
        };
        drop(inbox.take_woken());
        let tasks: Vec<_> = self.inner.tasks.borrow().values().cloned().collect();
        for task in tasks {
            task.wakeup();
        }
    }"#,
        caught_by: (
            "tasks",
            "a_task_pending_with_no_waker_registered_simply_waits",
        ),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "poll_done",
        mistake: "adds a waker at every poll instead of replacing its own",
        body: r#"{
        if self.future.done() {
            return Poll::Ready(());
        }
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let first_wait = self.awaiter.is_none();
        let (id, alive) = self
            .awaiter
            .get_or_insert_with(|| (AWAITERS.fetch_add(1, Ordering::Relaxed), Rc::new(())));
        self.future
            .waiters()
            .push(Waiter::Awaiter(*id, cx.waker().clone()));
        if first_wait {
            awaited_by_current_task(alive, cancel);
        }
        Poll::Pending
    }"#,
        caught_by: (
            "tasks",
            "a_wait_polled_again_replaces_its_own_waker_and_no_other",
        ),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "poll_done",
        mistake: "keeps only the latest waker of all, forgetting the other awaiters",
        body: r#"{
        if self.future.done() {
            return Poll::Ready(());
        }
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let first_wait = self.awaiter.is_none();
        let (id, alive) = self
            .awaiter
            .get_or_insert_with(|| (AWAITERS.fetch_add(1, Ordering::Relaxed), Rc::new(())));
        let mut waiters = self.future.waiters();
        waiters.retain(|waiter| matches!(waiter, Waiter::Callback(..)));
        waiters.push(Waiter::Awaiter(*id, cx.waker().clone()));
        drop(waiters);
        if first_wait {
            awaited_by_current_task(alive, cancel);
        }
        Poll::Pending
    }"#,
        caught_by: (
            "tasks",
            "a_wait_polled_again_replaces_its_own_waker_and_no_other",
        ),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "poll_done",
        mistake: "takes a new number at every poll, so Drop takes back only the last waker",
        body: r#"{
        if self.future.done() {
            return Poll::Ready(());
        }
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let id = AWAITERS.fetch_add(1, Ordering::Relaxed);
        let alive = Rc::new(());
        self.awaiter = Some((id, alive.clone()));
        self.future
            .waiters()
            .push(Waiter::Awaiter(id, cx.waker().clone()));
        awaited_by_current_task(&alive, cancel);
        Poll::Pending
    }"#,
        caught_by: ("tasks", "a_dropped_wait_takes_its_waker_back"),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "poll_done",
        mistake: "does not tell the task what it awaits, so cancelling the task leaves it",
        body: r#"{
        if self.future.done() {
            return Poll::Ready(());
        }
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let (id, _) = self
            .awaiter
            .get_or_insert_with(|| (AWAITERS.fetch_add(1, Ordering::Relaxed), Rc::new(())));
        let mut waiters = self.future.waiters();
        match waiters.iter_mut().find_map(|waiter| waiter.waker_of(*id)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => waiters.push(Waiter::Awaiter(*id, cx.waker().clone())),
        }
        drop((waiters, cancel));
        Poll::Pending
    }"#,
        caught_by: ("tasks", "cancelling_a_task_cancels_the_future_it_awaits"),
        hangs: false,
    },
    Mutant {
        step: 7,
        function: "poll_done",
        mistake: "waits even for a future that is already done",
        body: r#"{
        static AWAITERS: AtomicU64 = AtomicU64::new(0);
        let first_wait = self.awaiter.is_none();
        let (id, alive) = self
            .awaiter
            .get_or_insert_with(|| (AWAITERS.fetch_add(1, Ordering::Relaxed), Rc::new(())));
        let mut waiters = self.future.waiters();
        match waiters.iter_mut().find_map(|waiter| waiter.waker_of(*id)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => waiters.push(Waiter::Awaiter(*id, cx.waker().clone())),
        }
        drop(waiters);
        if first_wait {
            awaited_by_current_task(alive, cancel);
        }
        Poll::Pending
    }"#,
        caught_by: (
            "tasks",
            "run_until_complete_takes_an_async_fn_and_returns_its_output",
        ),
        hangs: true,
    },
];
