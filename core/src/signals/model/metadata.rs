//! The metadata file beside every model: what the model expects and where it came from.
//! The format is specified field by field in the [module docs](super).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::signals::features::FeatureSpec;
use crate::signals::monitor::Reference;

/// A model's metadata (`<model>.json`), as the training pipeline writes it.
///
/// Unknown top-level keys are ignored; unknown keys inside `training` and `validation` are
/// kept in their `extra` maps, so a newer training script does not break older engines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Model name (the registry key, with `version`).
    pub name: String,
    /// Version, increasing with every retraining of the same model.
    pub version: u32,
    /// File name of the ONNX graph, in the same directory as this metadata file.
    pub onnx: String,
    /// SHA-256 of the `.onnx` file's bytes, lowercase or uppercase hex (64 digits).
    pub sha256: String,
    /// The graph's inputs, in graph order.
    pub inputs: Vec<TensorSpec>,
    /// The graph's outputs, in graph order.
    pub outputs: Vec<TensorSpec>,
    /// The horizon of the predicted forward return, in milliseconds.
    pub horizon_ms: u32,
    /// The feature vector the model was trained on (its input, in order).
    pub features: FeatureSpec,
    /// Where the training data came from.
    pub training: TrainingInfo,
    /// Walk-forward validation results.
    pub validation: ValidationInfo,
    /// Training distributions of the features and predictions, for drift monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

/// One input or output of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// The graph's name for it.
    pub name: String,
    /// Its shape, dimension by dimension.
    pub shape: Vec<Dim>,
}

/// One dimension of a declared shape.
///
/// In JSON a fixed dimension is a non-negative integer; a dynamic one (a batch dimension
/// exported as `None` by skl2onnx, `-1` in ONNX Runtime's reports, or a symbolic name such
/// as `"N"`) may be written as `null`, `-1` or any string. It is written back as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// Decided at run time.
    Dynamic,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Dynamic => f.write_str("?"),
        }
    }
}

impl Serialize for Dim {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Fixed(n) => serializer.serialize_u64(*n),
            Self::Dynamic => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DimVisitor;

        impl Visitor<'_> for DimVisitor {
            type Value = Dim;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a dimension: a non-negative integer, or -1, null or a name for a dynamic one",
                )
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dim, E> {
                Ok(Dim::Fixed(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dim, E> {
                match n {
                    -1 => Ok(Dim::Dynamic),
                    n if n >= 0 => Ok(Dim::Fixed(n.unsigned_abs())),
                    n => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                }
            }

            fn visit_unit<E: de::Error>(self) -> Result<Dim, E> {
                Ok(Dim::Dynamic)
            }

            fn visit_none<E: de::Error>(self) -> Result<Dim, E> {
                Ok(Dim::Dynamic)
            }

            fn visit_str<E: de::Error>(self, _name: &str) -> Result<Dim, E> {
                Ok(Dim::Dynamic)
            }
        }

        deserializer.deserialize_any(DimVisitor)
    }
}

/// Formats a shape the way errors show it: `[1, 16]`, `[?, 16]`.
pub(crate) struct ShapeDisplay<'a>(pub(crate) &'a [Dim]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, dim) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{dim}")?;
        }
        f.write_str("]")
    }
}

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The recording (or other source) the features were exported from.
    pub source: String,
    /// Training rows.
    pub rows: u64,
    /// Engine time of the first row, ns since the Unix epoch.
    pub from_ns: u64,
    /// Engine time of the last row, ns since the Unix epoch.
    pub to_ns: u64,
    /// SHA-256 (hex) of the exported feature CSV.
    pub csv_sha256: String,
    /// Any other key the training script wrote (seeds, hyper-parameters...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Walk-forward validation results. Metrics that could not be computed are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationInfo {
    /// Per-fold results, as the training script wrote them.
    #[serde(default)]
    pub folds: Vec<serde_json::Value>,
    /// Information coefficient (correlation of prediction and realised return).
    #[serde(default)]
    pub ic: Option<f64>,
    /// Share of predictions with the sign of the realised return.
    #[serde(default)]
    pub hit_rate: Option<f64>,
    /// Root mean squared error of the prediction, in the prediction's unit. Used to derive a
    /// confidence when the model has no confidence output (see [`super::OnnxModel`]).
    #[serde(default)]
    pub rmse: Option<f64>,
    /// Any other key the training script wrote.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ModelMetadata {
    /// Parses a metadata file's contents.
    ///
    /// # Errors
    ///
    /// The JSON error (with line and column) when the text is not valid metadata.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Checks what can be checked without the model file: the `onnx` field is a plain file
    /// name, `sha256` is 64 hex digits, the feature list is not empty, the monitoring
    /// reference has a histogram per feature, the validation RMSE (when given) is a finite,
    /// non-negative number.
    ///
    /// # Errors
    ///
    /// The first problem found, as a sentence naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("`name` is empty".into());
        }
        let plain = std::path::Path::new(&self.onnx)
            .file_name()
            .is_some_and(|file| file == self.onnx.as_str());
        if !plain || self.onnx.contains(['/', '\\']) {
            return Err(format!(
                "`onnx` = {:?} must be a plain file name in the metadata file's directory",
                self.onnx
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`sha256` = {:?} is not 64 hexadecimal digits",
                self.sha256
            ));
        }
        if self.features.is_empty() {
            return Err("`features` declares no feature".into());
        }
        if let Some(reference) = &self.reference {
            if reference.features.len() != self.features.len() {
                return Err(format!(
                    "`reference.features` has {} histograms for {} features",
                    reference.features.len(),
                    self.features.len()
                ));
            }
            let histograms = reference
                .features
                .iter()
                .chain(std::iter::once(&reference.prediction));
            if let Some(i) = histograms
                .enumerate()
                .position(|(_, h)| h.fractions.len() != h.edges.len() + 1)
            {
                return Err(format!(
                    "`reference` histogram {i} needs exactly one more fraction than edges"
                ));
            }
        }
        if let Some(rmse) = self.validation.rmse
            && !(rmse.is_finite() && rmse >= 0.0)
        {
            return Err(format!(
                "`validation.rmse` = {rmse} is not a finite, non-negative number"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_parse_every_dynamic_spelling() {
        let dims: Vec<Dim> = serde_json::from_str(r#"[1, 16, -1, null, "N"]"#).unwrap();
        assert_eq!(
            dims,
            [
                Dim::Fixed(1),
                Dim::Fixed(16),
                Dim::Dynamic,
                Dim::Dynamic,
                Dim::Dynamic
            ]
        );
        assert!(serde_json::from_str::<Vec<Dim>>("[-2]").is_err());
        assert!(serde_json::from_str::<Vec<Dim>>("[1.5]").is_err());
        assert_eq!(
            serde_json::to_string(&[Dim::Fixed(3), Dim::Dynamic]).unwrap(),
            "[3,null]"
        );
        assert_eq!(
            ShapeDisplay(&[Dim::Dynamic, Dim::Fixed(16)]).to_string(),
            "[?, 16]"
        );
    }

    /// The test models' metadata (written by tools/scripts/make_test_models.py, so a
    /// change of the feature spec's schema is one regeneration away), with a few edits.
    fn json() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../tests/data/models/mlp-1.json")).unwrap()
    }

    fn parse(value: serde_json::Value) -> ModelMetadata {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn extra_keys_are_kept_or_ignored() {
        let mut value = json();
        value["training"]["model"] = "ridge".into();
        value["validation"]["r2"] = 0.01.into();
        value["something_new"] = true.into();
        let meta = parse(value);
        assert_eq!(meta.training.extra["model"], "ridge");
        assert_eq!(meta.validation.extra["r2"], 0.01);
        assert_eq!(meta.validation.hit_rate, None);
        assert_eq!(meta.validation.rmse, Some(0.5));
        assert_eq!(meta.inputs[0].shape, [Dim::Fixed(1), Dim::Fixed(16)]);
        assert!(meta.reference.is_some());
        meta.check().unwrap();
        // Round trip through our own writer.
        let text = serde_json::to_string(&meta).unwrap();
        assert_eq!(ModelMetadata::from_json(&text).unwrap(), meta);
    }

    #[test]
    fn check_names_the_bad_field() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(Edit, &str); 7] = [
            (|m| m["onnx"] = "../m.onnx".into(), "`onnx`"),
            (|m| m["onnx"] = "dir/m.onnx".into(), "`onnx`"),
            (|m| m["sha256"] = "xyz".into(), "`sha256`"),
            (|m| m["name"] = "".into(), "`name`"),
            (
                |m| m["validation"]["rmse"] = (-1.0).into(),
                "`validation.rmse`",
            ),
            (
                |m| m["features"]["features"] = serde_json::json!([]),
                "`features`",
            ),
            (
                |m| m["reference"]["features"] = serde_json::json!([]),
                "`reference.features` has 0 histograms for 16 features",
            ),
        ];
        for (break_it, expected) in cases {
            let mut value = json();
            break_it(&mut value);
            let error = parse(value).check().unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
        let mut value = json();
        value["reference"]["prediction"]["fractions"] = serde_json::json!([1.0]);
        let error = parse(value).check().unwrap_err();
        assert!(error.contains("histogram 16"), "{error}");
    }
}
