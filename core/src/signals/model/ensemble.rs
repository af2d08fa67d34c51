//! Several models scored on the same feature vector and combined into one prediction.

use serde::{Deserialize, Serialize};

use super::{ModelError, OnnxModel, Prediction};

/// How an [`Ensemble`] combines its members' predictions (formulas on [`combine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleMethod {
    /// Weighted mean of the predictions.
    WeightedAverage,
    /// Weighted vote on the sign of the predictions.
    MajorityVote,
}

/// Why an ensemble cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnsembleError {
    /// No member.
    #[error("an ensemble needs at least one member")]
    Empty,
    /// Not one weight per member.
    #[error("{weights} weights for {members} members")]
    WeightCount {
        /// Members.
        members: usize,
        /// Weights.
        weights: usize,
    },
    /// A weight is negative or not finite.
    #[error("weight {index} = {weight} must be a finite number >= 0")]
    BadWeight {
        /// Its position.
        index: usize,
        /// The weight.
        weight: f64,
    },
    /// The weights sum to 0.
    #[error("the weights sum to 0")]
    ZeroWeight,
    /// Members that do not take the same feature vector or predict the same horizon.
    #[error("member {index} ({member}) {what} differs from member 0's ({first})")]
    Mismatch {
        /// The member's position.
        index: usize,
        /// The member (`name vN`).
        member: String,
        /// Member 0 (`name vN`).
        first: String,
        /// `feature spec` or `horizon`.
        what: &'static str,
    },
}

/// Models scored on one feature vector, their predictions combined with [`combine`].
///
/// Every member must declare the same feature spec and horizon (one vector feeds them all).
/// [`predict`](Self::predict) scores every member into a buffer sized at construction
/// (allocation-free) and keeps the members' predictions for journaling.
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<OnnxModel>,
    weights: Vec<f64>,
    method: EnsembleMethod,
    /// The last [`predict`](Self::predict)'s member predictions, one per member.
    last: Vec<Prediction>,
}

impl Ensemble {
    /// An ensemble of `members` weighted by `weights` (one each, finite, `>= 0`, not all 0).
    ///
    /// # Errors
    ///
    /// An [`EnsembleError`] naming the problem.
    pub fn new(
        members: Vec<OnnxModel>,
        weights: Vec<f64>,
        method: EnsembleMethod,
    ) -> Result<Self, EnsembleError> {
        let Some(first) = members.first() else {
            return Err(EnsembleError::Empty);
        };
        if weights.len() != members.len() {
            return Err(EnsembleError::WeightCount {
                members: members.len(),
                weights: weights.len(),
            });
        }
        if let Some((index, &weight)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(EnsembleError::BadWeight { index, weight });
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(EnsembleError::ZeroWeight);
        }
        let label = |m: &OnnxModel| format!("{} v{}", m.name(), m.version());
        for (index, member) in members.iter().enumerate().skip(1) {
            let what = if member.metadata().features != first.metadata().features {
                "feature spec"
            } else if member.metadata().horizon_ms != first.metadata().horizon_ms {
                "horizon"
            } else {
                continue;
            };
            return Err(EnsembleError::Mismatch {
                index,
                member: label(member),
                first: label(first),
                what,
            });
        }
        let last = vec![
            Prediction {
                value: 0.0,
                confidence: 0.0
            };
            members.len()
        ];
        Ok(Self {
            members,
            weights,
            method,
            last,
        })
    }

    /// Scores every member on `features` and combines their predictions.
    ///
    /// # Errors
    ///
    /// The first member's [`ModelError`] (e.g. a non-finite feature); the members after it
    /// are not run.
    pub fn predict(&mut self, features: &[f32]) -> Result<Prediction, ModelError> {
        for (member, slot) in self.members.iter_mut().zip(self.last.iter_mut()) {
            *slot = member.predict(features)?;
        }
        Ok(combine(self.method, &self.weights, &self.last))
    }

    /// The members' predictions of the last successful [`predict`](Self::predict), in
    /// member order.
    pub fn member_predictions(&self) -> &[Prediction] {
        &self.last
    }

    /// The members.
    pub fn members(&self) -> &[OnnxModel] {
        &self.members
    }

    /// The weights, in member order.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The combination method.
    pub fn method(&self) -> EnsembleMethod {
        self.method
    }

    /// Takes the ensemble apart (to rebuild it with a new member version).
    pub fn into_members(self) -> Vec<OnnxModel> {
        self.members
    }
}

/// Combines member predictions; `weights` and `predictions` pair up in order (extra items of
/// the longer slice are ignored). With `W` the total weight:
///
/// **Weighted average.** `value = Σ wᵢ·vᵢ / W`. Agreement is one minus the normalised
/// dispersion, `1 − sd / rms` with `sd² = Σ wᵢ·(vᵢ − value)² / W` and
/// `rms² = Σ wᵢ·vᵢ² / W` (so `sd <= rms` and agreement is in `0..=1`: 1 when all members
/// say the same, 0 when they cancel out; 1 when all say 0). `confidence = agreement ·
/// Σ wᵢ·cᵢ / W`.
///
/// **Majority vote.** Each member votes the sign of its prediction with its weight (0
/// abstains, its weight still counts in `W`). The side with more weight wins; `value` is the
/// weighted mean of the winners' predictions and `confidence = (winning weight / W) ·
/// (weighted mean of the winners' confidences)`. A tie (including everyone abstaining)
/// gives value 0 and confidence 0.
///
/// Weights that sum to 0 give value 0 and confidence 0.
pub fn combine(method: EnsembleMethod, weights: &[f64], predictions: &[Prediction]) -> Prediction {
    let pairs = || weights.iter().copied().zip(predictions.iter().copied());
    let total: f64 = pairs().map(|(w, _)| w).sum();
    let nothing = Prediction {
        value: 0.0,
        confidence: 0.0,
    };
    if total <= 0.0 {
        return nothing;
    }
    match method {
        EnsembleMethod::WeightedAverage => {
            let value = pairs().map(|(w, p)| w * p.value).sum::<f64>() / total;
            let variance = pairs()
                .map(|(w, p)| w * (p.value - value).powi(2))
                .sum::<f64>()
                / total;
            let mean_square = pairs().map(|(w, p)| w * p.value * p.value).sum::<f64>() / total;
            let agreement = if mean_square > 0.0 {
                (1.0 - (variance / mean_square).sqrt()).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let confidence = pairs().map(|(w, p)| w * p.confidence).sum::<f64>() / total;
            Prediction {
                value,
                confidence: (agreement * confidence).clamp(0.0, 1.0),
            }
        }
        EnsembleMethod::MajorityVote => {
            let side_weight = |sign: f64| -> f64 {
                pairs()
                    .filter(|(_, p)| p.value * sign > 0.0)
                    .map(|(w, _)| w)
                    .sum()
            };
            let (up, down) = (side_weight(1.0), side_weight(-1.0));
            let (sign, winning) = if up > down {
                (1.0, up)
            } else if down > up {
                (-1.0, down)
            } else {
                return nothing;
            };
            let winners = || pairs().filter(move |(_, p)| p.value * sign > 0.0);
            let value = winners().map(|(w, p)| w * p.value).sum::<f64>() / winning;
            let confidence = winners().map(|(w, p)| w * p.confidence).sum::<f64>() / winning;
            Prediction {
                value,
                confidence: (winning / total * confidence).clamp(0.0, 1.0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(value: f64, confidence: f64) -> Prediction {
        Prediction { value, confidence }
    }

    #[test]
    fn average_of_agreeing_members_keeps_their_confidence() {
        let out = combine(
            EnsembleMethod::WeightedAverage,
            &[1.0, 3.0],
            &[p(0.2, 0.5), p(0.2, 0.9)],
        );
        assert!((out.value - 0.2).abs() < 1e-12);
        // agreement 1, weighted confidence (0.5 + 2.7) / 4 = 0.8
        assert!((out.confidence - 0.8).abs() < 1e-12, "{out:?}");
    }

    #[test]
    fn average_by_hand() {
        // values 1 and -0.5, weights 2 and 1: mean 0.5, var (2·0.25 + 1)/3 = 0.5,
        // mean square (2 + 0.25)/3 = 0.75, agreement 1 - sqrt(0.5/0.75) = 0.18.
        let out = combine(
            EnsembleMethod::WeightedAverage,
            &[2.0, 1.0],
            &[p(1.0, 1.0), p(-0.5, 1.0)],
        );
        let agreement = 1.0 - (0.5 / 0.75_f64).sqrt();
        assert!((out.value - 0.5).abs() < 1e-12);
        assert!((out.confidence - agreement).abs() < 1e-12, "{out:?}");
        // Opposite members of equal weight cancel out: value 0, agreement 0.
        let out = combine(
            EnsembleMethod::WeightedAverage,
            &[1.0, 1.0],
            &[p(0.3, 1.0), p(-0.3, 1.0)],
        );
        assert_eq!(out, p(0.0, 0.0));
        // All zero: full agreement on "nothing".
        let out = combine(
            EnsembleMethod::WeightedAverage,
            &[1.0, 1.0],
            &[p(0.0, 0.4), p(0.0, 0.6)],
        );
        assert!((out.confidence - 0.5).abs() < 1e-12);
    }

    #[test]
    fn vote_by_hand() {
        // Up: weights 1 + 2 (values 0.1, 0.4, conf 0.6, 0.9); down: weight 1.5; abstain 0.5.
        let out = combine(
            EnsembleMethod::MajorityVote,
            &[1.0, 2.0, 1.5, 0.5],
            &[p(0.1, 0.6), p(0.4, 0.9), p(-1.0, 1.0), p(0.0, 1.0)],
        );
        assert!((out.value - 0.9 / 3.0).abs() < 1e-12, "{out:?}");
        let share = 3.0 / 5.0;
        let conf = (0.6 + 1.8) / 3.0;
        assert!((out.confidence - share * conf).abs() < 1e-12, "{out:?}");
        // Down wins when it has more weight.
        let out = combine(
            EnsembleMethod::MajorityVote,
            &[1.0, 3.0],
            &[p(0.5, 1.0), p(-0.2, 0.5)],
        );
        assert!((out.value + 0.2).abs() < 1e-12);
        assert!((out.confidence - 0.75 * 0.5).abs() < 1e-12);
        // Tie and all-abstain: nothing.
        let tie = combine(
            EnsembleMethod::MajorityVote,
            &[1.0, 1.0],
            &[p(0.5, 1.0), p(-0.2, 1.0)],
        );
        assert_eq!(tie, p(0.0, 0.0));
        let abstain = combine(EnsembleMethod::MajorityVote, &[1.0], &[p(0.0, 1.0)]);
        assert_eq!(abstain, p(0.0, 0.0));
        assert_eq!(
            combine(EnsembleMethod::MajorityVote, &[0.0], &[p(1.0, 1.0)]),
            p(0.0, 0.0)
        );
    }

    #[test]
    fn method_names_in_config() {
        let m: EnsembleMethod = serde_json::from_str("\"majority_vote\"").unwrap();
        assert_eq!(m, EnsembleMethod::MajorityVote);
        let m: EnsembleMethod = serde_json::from_str("\"weighted_average\"").unwrap();
        assert_eq!(m, EnsembleMethod::WeightedAverage);
    }
}
