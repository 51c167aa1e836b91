//! Where the book states each rule that `just check N` runs: a rule that does not hold names the
//! section to read again. A test (`tests/book.rs`) checks that every rule has a section and that
//! every section exists.

use std::fmt;

/// A chapter of the book: its file under `book/src/`, and its title.
pub struct Chapter {
    /// The chapter's file, such as `03-callbacks.md`.
    pub file: &'static str,
    /// The chapter's title, its first line without the `# `.
    pub title: &'static str,
}

/// A section of a chapter, by its heading's text (the chapter's title for its opening).
pub struct Section {
    /// The chapter.
    pub chapter: &'static Chapter,
    /// The heading, without its `#`s.
    pub heading: &'static str,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Chapter { file, title } = self.chapter;
        if self.heading == *title {
            write!(f, "{title} (book/src/{file})")
        } else {
            write!(f, "{title} › {} (book/src/{file})", self.heading)
        }
    }
}

const BLOCKING: Chapter = Chapter {
    file: "01-blocking.md",
    title: "The problem with blocking I/O",
};
const GENERATORS: Chapter = Chapter {
    file: "02-generators.md",
    title: "Generators: functions that pause",
};
const CALLBACKS: Chapter = Chapter {
    file: "03-callbacks.md",
    title: "An event loop that runs callbacks",
};
const TIMERS: Chapter = Chapter {
    file: "04-timers.md",
    title: "Timers",
};
const FUTURES: Chapter = Chapter {
    file: "05-futures.md",
    title: "Futures",
};
const SELECT: Chapter = Chapter {
    file: "06-select.md",
    title: "Waiting for sockets with select",
};
const TASKS: Chapter = Chapter {
    file: "07-tasks.md",
    title: "Tasks: `async fn` on our loop",
};
const WAKERS: Chapter = Chapter {
    file: "07-tasks/tasks-and-wakers.md",
    title: "Tasks and wakers",
};
const SOCKETS: Chapter = Chapter {
    file: "07-tasks/async-sockets.md",
    title: "Sockets you can await",
};
const PROXY: Chapter = Chapter {
    file: "07-tasks/proxy.md",
    title: "The proxy",
};
const HOW_FAST: Chapter = Chapter {
    file: "07-tasks/how-fast.md",
    title: "How fast is it?",
};

/// A section, briefly.
const fn at(chapter: &'static Chapter, heading: &'static str) -> Section {
    Section { chapter, heading }
}

const IDEA_1: Section = at(&BLOCKING, "The idea");
const CODE_1: Section = at(&BLOCKING, "The code");
const IDEA_2: Section = at(&GENERATORS, "The idea");
const LIB_2: Section = at(&GENERATORS, "`src/lib.rs`");
const ASYNC_FN_2: Section = at(&GENERATORS, "How `async fn` becomes a state machine");
const IDEA_3: Section = at(&CALLBACKS, "The idea");
const LIB_3: Section = at(&CALLBACKS, "`src/lib.rs`");
const HARDENING_3: Section = at(&CALLBACKS, "Hardening: skip on first reading");
const IDEA_4: Section = at(&TIMERS, "The idea");
const LIB_4: Section = at(&TIMERS, "`src/lib.rs`");
const HARDENING_4: Section = at(&TIMERS, "Hardening: skip on first reading");
const IDEA_5: Section = at(&FUTURES, "The idea");
const LIB_5: Section = at(&FUTURES, "`src/lib.rs`");
const IDEA_6: Section = at(&SELECT, "The idea");
const LIB_6: Section = at(&SELECT, "`src/lib.rs`: watching descriptors");
const HARDENING_6: Section = at(&SELECT, "Hardening: skip on first reading");
const IDEA_7: Section = at(&TASKS, "The idea");
const CREATE_TASK: Section = at(&WAKERS, "`src/task.rs` (new): `create_task`");
const TASK: Section = at(&WAKERS, "`Task` and `TaskCore`");
const STEP: Section = at(&WAKERS, "`step`: asyncio's `__step`");
const WAKEUP: Section = at(&WAKERS, "`wakeup`: asyncio's `__wakeup`");
const WOKEN: Section = at(
    &WAKERS,
    "`schedule_woken_tasks`: from the inbox to the ready queue",
);
const AWAITERS: Section = at(&WAKERS, "Many awaiters, one outcome: `src/wait.rs` (new)");
const LIB_7: Section = at(&WAKERS, "`src/lib.rs`: the loop runs tasks");
const HARDENING_7: Section = at(&WAKERS, "Hardening: skip on first reading");
const SOCKETS_7: Section = at(&SOCKETS, "Sockets you can await");
const BUDGET: Section = at(&HOW_FAST, "The code: `src/budget.rs` (new)");

/// The section that states each rule: by test binary, the rules (the tests' function names).
pub const SECTIONS: &[(&str, &[(&str, Section)])] = &[
    (
        "step1",
        &[
            (
                "curl_gets_the_same_bytes_through_the_proxy_as_directly",
                IDEA_1,
            ),
            (
                "curl_posts_a_body_through_the_proxy_and_gets_it_echoed",
                IDEA_1,
            ),
            (
                "one_at_a_time_makes_clients_queue_and_threads_do_not",
                IDEA_1,
            ),
            (
                "bad_requests_get_a_clear_answer_and_the_server_goes_on",
                CODE_1,
            ),
        ],
    ),
    (
        "step2",
        &[
            ("countdown_yields_n_down_to_1_then_returns_how_many", IDEA_2),
            (
                "countdown_runs_nothing_until_resumed_and_pauses_in_named_states",
                IDEA_2,
            ),
            ("resuming_a_completed_countdown_panics", LIB_2),
            ("resuming_a_completed_launch_panics", LIB_2),
            (
                "launch_passes_every_countdown_value_through_then_uses_its_return_value",
                IDEA_2,
            ),
            ("launch_holds_the_paused_countdown_while_delegating", IDEA_2),
            ("scheduler_interleaves_in_strict_round_robin_order", IDEA_2),
            (
                "async_fns_driven_by_the_poll_loop_take_the_same_turns",
                ASYNC_FN_2,
            ),
            (
                "async_fns_yield_and_return_what_the_hand_written_generators_do",
                ASYNC_FN_2,
            ),
        ],
    ),
    (
        "callbacks",
        &[
            ("callbacks_run_in_the_order_they_were_scheduled", IDEA_3),
            (
                "a_callback_scheduled_during_an_iteration_runs_in_the_next_one",
                IDEA_3,
            ),
            (
                "stop_lets_the_current_iteration_finish_and_the_loop_runs_again",
                IDEA_3,
            ),
            ("stop_before_run_forever_runs_one_iteration", IDEA_3),
            (
                "a_cancelled_handle_never_runs_and_drops_its_callback",
                LIB_3,
            ),
            ("a_callback_can_cancel_one_scheduled_after_it", LIB_3),
            ("a_callback_can_cancel_its_own_handle_while_it_runs", LIB_3),
            ("a_handle_names_its_callback", LIB_3),
            (
                "a_loop_run_inside_itself_is_refused_with_asyncio_s_message",
                IDEA_3,
            ),
            (
                "close_drops_the_queued_callbacks_and_the_loop_refuses_more_work",
                IDEA_3,
            ),
            ("a_running_loop_cannot_be_closed", HARDENING_3),
        ],
    ),
    (
        "timers",
        &[
            ("timers_run_in_deadline_order", IDEA_4),
            ("equal_deadlines_run_in_scheduling_order", IDEA_4),
            (
                "thousands_of_shuffled_timers_run_sorted_by_deadline_then_sequence",
                IDEA_4,
            ),
            (
                "a_timer_in_the_past_runs_in_the_next_iteration_after_ready_callbacks",
                IDEA_4,
            ),
            (
                "timers_due_together_run_in_one_iteration_before_what_they_schedule",
                IDEA_4,
            ),
            ("call_later_is_call_at_from_now", IDEA_4),
            ("a_cancelled_timer_never_runs", IDEA_4),
            ("a_callback_can_schedule_timers_and_stop_from_one", IDEA_4),
            ("waiting_for_a_timer_sleeps_instead_of_spinning", IDEA_4),
            (
                "cancelled_timers_are_purged_once_they_are_most_of_the_heap",
                HARDENING_4,
            ),
            (
                "cancelling_a_timer_that_already_ran_does_not_count_towards_a_purge",
                HARDENING_4,
            ),
            (
                "close_drops_the_scheduled_timers_and_the_loop_refuses_more",
                HARDENING_4,
            ),
            (
                "a_delay_beyond_what_the_clock_counts_is_a_timer_that_never_comes",
                LIB_4,
            ),
        ],
    ),
    (
        "futures",
        &[
            ("a_future_goes_from_pending_to_finished_once", IDEA_5),
            ("a_cancelled_future_takes_no_result", IDEA_5),
            (
                "done_callbacks_are_scheduled_in_order_never_called_inline",
                IDEA_5,
            ),
            ("a_callback_added_to_a_done_future_is_scheduled_too", IDEA_5),
            ("cancelling_schedules_the_done_callbacks", IDEA_5),
            (
                "run_until_complete_returns_the_result_set_by_a_timer",
                IDEA_5,
            ),
            (
                "gather_gives_results_in_input_order_whatever_order_they_finish_in",
                IDEA_5,
            ),
            ("gather_of_nothing_is_done_at_once", LIB_5),
            (
                "cancelling_the_gathered_future_cancels_the_pending_children",
                IDEA_5,
            ),
            (
                "a_cancelled_child_fails_the_gathered_future_and_the_others_go_on",
                IDEA_5,
            ),
            ("the_first_child_to_fail_fails_the_gathered_future", IDEA_5),
            (
                "a_future_can_fail_with_an_error_instead_of_a_result",
                IDEA_5,
            ),
            (
                "stop_before_the_future_is_done_ends_run_until_complete_with_asyncio_message",
                IDEA_5,
            ),
            (
                "run_until_complete_inside_a_running_loop_is_refused",
                IDEA_5,
            ),
            ("sleeps_finish_in_deadline_order", IDEA_5),
            (
                "a_cancelled_sleep_stays_cancelled_when_its_timer_fires",
                LIB_5,
            ),
            (
                "cancelling_a_gather_whose_children_are_done_changes_nothing",
                IDEA_5,
            ),
            (
                "a_cancelled_gather_waits_for_its_children_to_fail_it",
                IDEA_5,
            ),
            (
                "run_until_complete_returns_after_the_done_callbacks_added_before_it",
                IDEA_5,
            ),
        ],
    ),
    (
        "select",
        &[
            (
                "a_reader_runs_each_time_the_descriptor_is_ready_until_removed",
                IDEA_6,
            ),
            ("remove_reports_whether_something_was_registered", LIB_6),
            ("adding_again_replaces_the_callback", LIB_6),
            (
                "a_reader_and_a_writer_of_one_descriptor_both_run_the_reader_first",
                LIB_6,
            ),
            ("a_peer_that_closes_makes_the_reader_see_the_end", IDEA_6),
            ("spurious_readiness_is_harmless", LIB_6),
            (
                "a_timer_and_a_socket_ready_together_run_in_the_same_iteration",
                IDEA_6,
            ),
            (
                "the_loop_keeps_a_watched_source_open_until_it_is_removed",
                LIB_6,
            ),
            (
                "a_nonblocking_connect_becomes_writable_then_reports_its_outcome",
                IDEA_6,
            ),
            (
                "a_removed_reader_does_not_run_even_when_already_queued",
                LIB_6,
            ),
            (
                "a_replaced_reader_does_not_run_even_when_already_queued",
                LIB_6,
            ),
            (
                "a_removed_callback_may_use_the_loop_as_it_is_dropped",
                LIB_6,
            ),
            (
                "a_replaced_callback_may_use_the_loop_as_it_is_dropped",
                LIB_6,
            ),
            (
                "close_drops_the_watches_and_closes_the_sources",
                HARDENING_6,
            ),
            (
                "the_loop_s_sockets_are_not_inherited_by_child_processes",
                HARDENING_6,
            ),
        ],
    ),
    (
        "tasks",
        &[
            ("a_task_drives_an_async_fn_to_its_output", CREATE_TASK),
            (
                "run_until_complete_takes_an_async_fn_and_returns_its_output",
                LIB_7,
            ),
            (
                "run_is_a_new_loop_a_task_and_run_until_complete",
                HARDENING_7,
            ),
            (
                "a_panic_in_run_s_future_reaches_the_caller_after_the_cleanup",
                HARDENING_7,
            ),
            (
                "run_closes_its_loop_and_drops_what_was_left_on_it",
                HARDENING_7,
            ),
            ("close_cancels_the_tasks_still_pending", HARDENING_7),
            ("tasks_interleave_at_their_awaits", IDEA_7),
            ("a_task_woken_twice_before_it_runs_is_stepped_once", WAKEUP),
            (
                "a_task_pending_with_no_waker_registered_simply_waits",
                WOKEN,
            ),
            (
                "a_wake_from_another_thread_reaches_a_loop_asleep_in_select",
                WOKEN,
            ),
            ("any_number_of_tasks_can_await_one_future", AWAITERS),
            (
                "a_wait_polled_again_replaces_its_own_waker_and_no_other",
                AWAITERS,
            ),
            ("a_dropped_wait_takes_its_waker_back", AWAITERS),
            ("a_task_shared_as_a_future_wakes_every_awaiter", AWAITERS),
            (
                "an_awaiting_task_steps_in_the_iteration_after_the_result_is_set",
                AWAITERS,
            ),
            ("a_task_s_output_is_handed_over_without_clone", TASK),
            ("a_task_cancelled_before_its_first_step_never_runs", WAKEUP),
            (
                "a_cancelled_task_is_done_only_once_its_async_fn_is_dropped",
                WAKEUP,
            ),
            ("cancelling_a_task_cancels_the_future_it_awaits", WAKEUP),
            (
                "cancelling_a_task_that_awaits_a_gather_cancels_the_gather_and_its_children",
                WAKEUP,
            ),
            (
                "cancelling_a_task_that_awaits_a_task_cancels_that_task",
                WAKEUP,
            ),
            (
                "a_task_cancelled_while_awaiting_io_drops_its_future_and_its_interest",
                SOCKETS_7,
            ),
            ("an_abandoned_read_does_not_make_the_loop_spin", SOCKETS_7),
            ("a_panicking_task_fails_alone", STEP),
            (
                "gather_over_a_task_that_panicked_fails_with_the_panic",
                STEP,
            ),
            ("a_loop_cannot_run_inside_a_task", HARDENING_7),
            ("gather_over_tasks_gives_results_in_input_order", LIB_7),
            ("connecting_to_a_closed_port_is_refused", SOCKETS_7),
            (
                "futures_io_copy_moves_every_byte_through_our_sockets",
                SOCKETS_7,
            ),
            ("a_vectored_write_sends_every_buffer_in_one_call", SOCKETS_7),
            (
                "no_descriptor_stays_registered_after_many_connections_open_and_close",
                SOCKETS_7,
            ),
            ("sleeping_tasks_wake_in_deadline_order", LIB_7),
            ("sleep_outside_a_running_loop_says_so", LIB_7),
            (
                "a_task_whose_socket_is_always_ready_yields_to_the_others",
                BUDGET,
            ),
            (
                "a_task_waiting_on_many_idle_sockets_reads_the_one_that_gets_data",
                BUDGET,
            ),
            (
                "after_yield_now_the_selector_is_asked_before_the_task_steps_again",
                BUDGET,
            ),
            (
                "a_panic_in_a_cancelled_task_s_cleanup_ends_that_task_with_the_panic",
                STEP,
            ),
            (
                "run_closes_its_loop_when_a_task_it_cancels_panics_in_its_cleanup",
                HARDENING_7,
            ),
            (
                "run_waits_only_for_the_tasks_it_cancelled_and_close_drops_the_ones_they_started",
                HARDENING_7,
            ),
            (
                "close_drops_the_tasks_that_the_cleanup_of_closed_tasks_starts",
                HARDENING_7,
            ),
            (
                "cancelling_a_task_leaves_alone_what_it_raced_and_gave_up_on",
                WAKEUP,
            ),
            (
                "cancelling_a_task_cancels_every_task_it_joins_however_the_combinator_wakes",
                WAKEUP,
            ),
            ("two_tasks_reading_one_stream_are_both_woken", SOCKETS_7),
            (
                "a_read_after_a_short_read_waits_for_the_selector_instead_of_asking_the_kernel",
                SOCKETS_7,
            ),
            (
                "a_read_after_would_block_waits_for_the_selector_instead_of_asking_the_kernel",
                SOCKETS_7,
            ),
            (
                "a_write_after_a_short_write_waits_for_the_selector_instead_of_asking_the_kernel",
                SOCKETS_7,
            ),
            (
                "a_read_after_readiness_that_nobody_awaited_asks_the_kernel_at_once",
                SOCKETS_7,
            ),
            ("a_task_s_future_refuses_a_result_from_outside", AWAITERS),
            (
                "a_task_s_future_is_done_in_the_step_that_ends_the_task",
                AWAITERS,
            ),
            (
                "a_task_is_woken_in_order_with_the_done_callbacks_of_the_future_it_awaits",
                AWAITERS,
            ),
            (
                "a_sleep_longer_than_the_clock_can_count_waits_instead_of_panicking",
                LIB_4,
            ),
        ],
    ),
    (
        "demos",
        &[
            (
                "step1_demo_prints_what_the_book_shows",
                at(&BLOCKING, "Run it"),
            ),
            (
                "step2_demo_prints_what_the_book_shows",
                at(&GENERATORS, "Run it"),
            ),
            (
                "step3_demo_prints_what_the_book_shows",
                at(&CALLBACKS, "Run it"),
            ),
            (
                "step4_demo_prints_what_the_book_shows",
                at(&TIMERS, "Run it"),
            ),
            (
                "step5_demo_prints_what_the_book_shows",
                at(&FUTURES, "Run it"),
            ),
            (
                "step6_demo_prints_what_the_book_shows",
                at(&SELECT, "Run it"),
            ),
            (
                "step7_demo_prints_what_the_book_shows",
                at(&WAKERS, "Run it"),
            ),
            (
                "step7_compare_prints_what_the_book_shows",
                at(&PROXY, "Run it"),
            ),
            ("step1_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            ("step2_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            ("step3_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            ("step4_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            ("step5_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            ("step6_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            ("step7_demo_ends_quietly_when_its_reader_goes_away", CODE_1),
            (
                "step3_traces_each_callback_by_its_name_in_one_iteration",
                at(&CALLBACKS, "Run it"),
            ),
            (
                "step3_without_trace_prints_no_trace",
                at(&CALLBACKS, "Run it"),
            ),
            (
                "step4_traces_the_timer_and_the_sleep_until_it_is_due",
                at(&TIMERS, "Run it"),
            ),
            (
                "step5_names_done_callbacks_by_the_users_function",
                at(&FUTURES, "Run it"),
            ),
            (
                "step6_traces_what_select_was_asked_and_what_it_answered",
                at(&SELECT, "Run it"),
            ),
            (
                "step7_traces_each_task_step_its_outcome_and_who_woke_it",
                at(&WAKERS, "Run it"),
            ),
        ],
    ),
];

/// The section that states the rule `rule` of test binary `binary`.
pub fn section(binary: &str, rule: &str) -> Option<&'static Section> {
    let (_, rules) = SECTIONS.iter().find(|(listed, _)| *listed == binary)?;
    let (_, section) = rules.iter().find(|(listed, _)| *listed == rule)?;
    Some(section)
}
