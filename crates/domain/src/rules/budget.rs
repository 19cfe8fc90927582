//! C3: spending the org's API allowance sparingly, in priority order.

use crate::ports::ApiUsage;

/// What a request is for; lower priorities defer first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Incremental/initial sync.
    Background,
    /// Writing phone-system edits back (R11).
    WriteBack,
    /// Call activities: the last to defer.
    Activity,
}

/// The decision for one unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Allowed,
    /// Defer until the usage falls (Salesforce's allowance is a rolling 24 hours).
    Defer,
}

/// C3: callsync may use up to `percent` of the org's daily allowance. What it has used is
/// `ours` (requests this tenant's work sent in the last 24 h). Background work stops at 80 %
/// of that ceiling, write-back at 90 %, activities at 100 %. Whatever the ceiling, nothing is
/// sent once the org as a whole (all its integrations) has used 98 % of its allowance, except
/// activities, which stop only when Salesforce itself refuses.
pub fn may_spend(priority: Priority, usage: Option<ApiUsage>, ours: u64, percent: u8) -> Spend {
    let Some(usage) = usage else {
        // Nothing observed yet: the first response will tell.
        return Spend::Allowed;
    };
    if usage.max == 0 {
        return Spend::Allowed;
    }
    let ceiling = usage.max.saturating_mul(u64::from(percent.min(100))) / 100;
    let share = match priority {
        Priority::Background => 80,
        Priority::WriteBack => 90,
        Priority::Activity => 100,
    };
    let limit = ceiling.saturating_mul(share) / 100;
    let org_nearly_out = usage.used.saturating_mul(100) >= usage.max.saturating_mul(98);
    if ours >= limit || (org_nearly_out && priority != Priority::Activity) {
        Spend::Defer
    } else {
        Spend::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn usage(used: u64, max: u64) -> Option<ApiUsage> {
        Some(ApiUsage {
            used,
            max,
            observed_at: Utc::now(),
        })
    }

    #[test]
    fn c3_background_defers_first_activities_last() {
        use Priority::*;
        use Spend::*;
        // max 100,000, 20 % → ceiling 20,000: background ≤ 16,000, write-back ≤ 18,000.
        let u = usage(30_000, 100_000);
        let table = [
            (Background, 15_999, Allowed),
            (Background, 16_000, Defer),
            (WriteBack, 17_999, Allowed),
            (WriteBack, 18_000, Defer),
            (Activity, 19_999, Allowed),
            (Activity, 20_000, Defer),
        ];
        for (p, ours, expected) in table {
            assert_eq!(may_spend(p, u, ours, 20), expected, "{p:?} at {ours}");
        }
        assert_eq!(may_spend(Background, None, 1_000_000, 20), Allowed);
    }

    #[test]
    fn c3_org_nearly_exhausted_defers_all_but_activities() {
        let u = usage(99_000, 100_000);
        assert_eq!(may_spend(Priority::Background, u, 0, 20), Spend::Defer);
        assert_eq!(may_spend(Priority::WriteBack, u, 0, 20), Spend::Defer);
        assert_eq!(may_spend(Priority::Activity, u, 0, 20), Spend::Allowed);
    }
}
