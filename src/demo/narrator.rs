//! The demo's narration: numbered steps, indented lines, timings.

use std::time::{Duration, Instant};

/// Prints numbered steps with their timing.
pub struct Narrator {
    step: usize,
    steps: usize,
    started: Instant,
    step_started: Instant,
}

impl Narrator {
    /// A narration of `steps` steps, its clock started now.
    pub fn new(steps: usize) -> Self {
        let now = Instant::now();
        Self {
            step: 0,
            steps,
            started: now,
            step_started: now,
        }
    }

    /// Opens the next step under `title`.
    pub fn step(&mut self, title: &str) {
        self.step += 1;
        self.step_started = Instant::now();
        println!("\n[{}/{}] {title}", self.step, self.steps);
    }

    /// Says `text` within the step, each line indented.
    pub fn say(&self, text: &str) {
        for line in text.lines() {
            println!("      {line}");
        }
    }

    /// Says the SQL a participant sends.
    pub fn sql(&self, sql: &str) {
        self.say(&format!("SQL: {sql}"));
    }

    /// Closes the step with the time it took.
    pub fn done(&self) {
        println!("      ({})", millis(self.step_started.elapsed()));
    }

    /// The time since the narration began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A duration for people: milliseconds under ten seconds, else seconds.
pub fn millis(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The first characters of a hash or id, for display.
pub fn short(text: &str) -> String {
    let cut: String = text.chars().take(19).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}
