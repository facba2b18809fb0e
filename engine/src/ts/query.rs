//! Downsampling: one aggregate per step of a range, buckets starting at the
//! range's start. A block that lies inside one bucket is folded in from its
//! summary; only the others are decoded.

use super::keys::Summary;
use super::{Point, TimeSeries};
use crate::{Error, Result};

/// What [`TimeSeries::visit`] hands over: a run of points, or the summary of
/// a whole block.
pub(crate) enum Visit<'a> {
    Points(&'a [i64], &'a [f64]),
    Summary(&'a Summary),
}

/// The aggregate computed per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aggregate {
    /// Smallest value (NaN values are skipped unless every value is NaN).
    Min,
    /// Largest value (NaN values are skipped unless every value is NaN).
    Max,
    /// Sum divided by count.
    Avg,
    /// Sum of the values (per block, then across blocks: it may differ from a
    /// point-by-point sum by rounding).
    Sum,
    /// Number of points.
    Count,
    /// Value of the earliest point.
    First,
    /// Value of the latest point.
    Last,
}

impl std::str::FromStr for Aggregate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Aggregate> {
        Ok(match s {
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "avg" => Aggregate::Avg,
            "sum" => Aggregate::Sum,
            "count" => Aggregate::Count,
            "first" => Aggregate::First,
            "last" => Aggregate::Last,
            other => return Err(Error::InvalidArgument(format!("unknown aggregate {other:?} (min, max, avg, sum, count, first, last)"))),
        })
    }
}

/// The result of [`TimeSeries::downsample`] and how it was computed.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct DownsampleReport {
    /// One point per non-empty bucket: the bucket's start and its aggregate.
    pub points: Vec<Point>,
    /// Blocks folded in from their summaries, without being read.
    pub blocks_from_summary: u64,
    /// Blocks read and decoded (the head, when the range reaches it, counts as one).
    pub blocks_decoded: u64,
}

#[derive(Clone, Copy)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
}

impl Acc {
    fn new(first: f64) -> Acc {
        Acc { count: 0, sum: 0.0, min: first, max: first, first, last: first }
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.last = v;
    }

    fn merge(&mut self, s: &Summary) {
        self.count += u64::from(s.count);
        self.sum += s.sum;
        self.min = self.min.min(s.min);
        self.max = self.max.max(s.max);
        self.last = s.last;
    }

    fn value(&self, agg: Aggregate) -> f64 {
        match agg {
            Aggregate::Min => self.min,
            Aggregate::Max => self.max,
            Aggregate::Avg => self.sum / self.count as f64,
            Aggregate::Sum => self.sum,
            Aggregate::Count => self.count as f64,
            Aggregate::First => self.first,
            Aggregate::Last => self.last,
        }
    }
}

impl TimeSeries<'_> {
    /// `agg` of the points of `series` in `[from, to)` per `step_ms`: buckets
    /// `[from + k*step, from + (k+1)*step)`, one point per non-empty bucket at
    /// its start. `step_ms` must be positive ([`Error::InvalidArgument`]).
    pub fn downsample(&self, series: &str, from: i64, to: i64, step_ms: i64, agg: Aggregate) -> Result<DownsampleReport> {
        let _timer = crate::metrics::timed(crate::metrics::StoreOp::TsDownsample);
        if step_ms <= 0 {
            return Err(Error::InvalidArgument(format!("step must be positive, got {step_ms} ms")));
        }
        let bucket = |ts: i64| (i128::from(ts) - i128::from(from)) / i128::from(step_ms);
        let mut buckets: Vec<(i128, Acc)> = Vec::new();
        let mut report = DownsampleReport::default();
        let whole = |first: i64, last: i64| bucket(first) == bucket(last);
        self.visit(
            series,
            from,
            to,
            &mut |visit| {
                match visit {
                    Visit::Summary(s) => {
                        report.blocks_from_summary += 1;
                        let k = bucket(s.first_ts);
                        match buckets.last_mut() {
                            Some((bk, acc)) if *bk == k => acc.merge(s),
                            _ => {
                                let mut acc = Acc::new(s.first);
                                acc.merge(s);
                                buckets.push((k, acc));
                            }
                        }
                    }
                    Visit::Points(t, v) => {
                        report.blocks_decoded += 1;
                        for (&ts, &value) in t.iter().zip(v) {
                            let k = bucket(ts);
                            match buckets.last_mut() {
                                Some((bk, acc)) if *bk == k => acc.add(value),
                                _ => {
                                    let mut acc = Acc::new(value);
                                    acc.add(value);
                                    buckets.push((k, acc));
                                }
                            }
                        }
                    }
                }
                Ok(())
            },
            Some(&whole),
        )?;
        for (k, acc) in buckets {
            let start = i128::from(from) + k * i128::from(step_ms);
            let ts_ms = i64::try_from(start).map_err(|_| Error::Internal("bucket start outside i64".into()))?;
            report.points.push(Point { ts_ms, value: acc.value(agg) });
        }
        Ok(report)
    }
}
