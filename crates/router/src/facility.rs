//! Facility health: the power, cooling and physical-alarm signals a site's
//! monitoring reports, and the hysteresis that drains a degraded site and
//! lets it take traffic again only after it has stayed healthy for a while.

use std::time::{Duration, Instant};

use serde::Deserialize;

/// The state of one facility system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Working normally.
    Ok,
    /// Working with reduced margin (on generator, one chiller down).
    Degraded,
    /// Not working.
    Failed,
}

/// What the facility's monitoring reports (the JSON of the status file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityStatus {
    /// Power supply.
    pub power: Signal,
    /// Cooling.
    pub cooling: Signal,
    /// Active physical alarms (intrusion, fire, ...); only their number is ever shown.
    #[serde(default)]
    pub alarms: Vec<String>,
}

impl FacilityStatus {
    /// Parses the status file's JSON, e.g. `{"power": "ok", "cooling": "degraded", "alarms": []}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("{e} (expected {{\"power\": \"ok\"|\"degraded\"|\"failed\", \"cooling\": ..., \"alarms\": [...]}})")
        })
    }

    /// What is wrong, shown without the alarms' text; empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (system, signal) in [("power", self.power), ("cooling", self.cooling)] {
            match signal {
                Signal::Ok => {}
                Signal::Degraded => problems.push(format!("{system} degraded")),
                Signal::Failed => problems.push(format!("{system} failed")),
            }
        }
        match self.alarms.len() {
            0 => {}
            1 => problems.push("1 physical alarm".to_owned()),
            n => problems.push(format!("{n} physical alarms")),
        }
        problems
    }
}

/// Whether a site takes new requests, with hysteresis: any problem drains it
/// at once; it takes requests again only after `recover_after` without one.
#[derive(Debug, Clone)]
pub struct Drain {
    recover_after: Duration,
    draining: bool,
    healthy_since: Option<Instant>,
}

impl Drain {
    /// A healthy site that, once drained, recovers after `recover_after` of good reports.
    pub fn new(recover_after: Duration) -> Self {
        Self { recover_after, draining: false, healthy_since: None }
    }

    /// Takes the problems observed at `now` (empty: healthy); returns why the
    /// site is draining, or `None` when it takes new requests.
    pub fn observe(&mut self, problems: &[String], now: Instant) -> Option<String> {
        if !problems.is_empty() {
            self.draining = true;
            self.healthy_since = None;
            return Some(problems.join(", "));
        }
        if !self.draining {
            return None;
        }
        let since = *self.healthy_since.get_or_insert(now);
        let healthy_for = now.saturating_duration_since(since);
        if healthy_for >= self.recover_after {
            self.draining = false;
            self.healthy_since = None;
            return None;
        }
        Some(format!(
            "recovering: healthy for {}s of the {}s required",
            healthy_for.as_secs(),
            self.recover_after.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_parse_and_name_what_is_wrong_without_alarm_text() {
        let ok = FacilityStatus::parse(r#"{"power": "ok", "cooling": "ok"}"#).unwrap();
        assert!(ok.problems().is_empty());
        let bad =
            FacilityStatus::parse(r#"{"power": "failed", "cooling": "degraded", "alarms": ["fence 3", "hall B"]}"#)
                .unwrap();
        assert_eq!(bad.problems(), ["power failed", "cooling degraded", "2 physical alarms"]);
        assert!(FacilityStatus::parse(r#"{"power": "fine", "cooling": "ok"}"#).unwrap_err().contains("expected"));
        assert!(FacilityStatus::parse(r#"{"power": "ok"}"#).is_err(), "every system must be reported");
        assert!(FacilityStatus::parse(r#"{"power": "ok", "cooling": "ok", "fuel": "ok"}"#).is_err());
    }

    #[test]
    fn a_problem_drains_at_once_and_recovery_waits_for_a_steady_good_spell() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut drain = Drain::new(Duration::from_secs(60));
        assert_eq!(drain.observe(&[], at(0)), None);
        let problem = vec!["cooling degraded".to_owned()];
        assert_eq!(drain.observe(&problem, at(1)).as_deref(), Some("cooling degraded"));
        assert!(drain.observe(&[], at(2)).unwrap().starts_with("recovering: healthy for 0s"));
        assert!(drain.observe(&[], at(50)).unwrap().contains("48s of the 60s"));
        // A relapse starts the count again.
        assert!(drain.observe(&problem, at(55)).is_some());
        assert!(drain.observe(&[], at(56)).is_some());
        assert!(drain.observe(&[], at(115)).is_some());
        assert_eq!(drain.observe(&[], at(116)), None);
        assert_eq!(drain.observe(&[], at(117)), None);
    }
}
