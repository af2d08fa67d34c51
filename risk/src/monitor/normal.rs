//! The standard normal quantile (inverse CDF), Wichura's algorithm AS 241 (PPND16).

// The coefficients are quoted as published (AS 241, also R's `qnorm.c`) so they can be
// checked digit by digit; the extra digits round to the same `f64`.
#[allow(
    clippy::excessive_precision,
    reason = "published coefficients, quoted verbatim"
)]
const A: [f64; 8] = [
    3.387132872796366608,
    133.14166789178437745,
    1971.5909503065514427,
    13731.693765509461125,
    45921.953931549871457,
    67265.770927008700853,
    33430.575583588128105,
    2509.0809287301226727,
];
#[allow(
    clippy::excessive_precision,
    reason = "published coefficients, quoted verbatim"
)]
const B: [f64; 8] = [
    1.0,
    42.313330701600911252,
    687.1870074920579083,
    5394.1960214247511077,
    21213.794301586595867,
    39307.89580009271061,
    28729.085735721942674,
    5226.495278852854561,
];
#[allow(
    clippy::excessive_precision,
    reason = "published coefficients, quoted verbatim"
)]
const C: [f64; 8] = [
    1.42343711074968357734,
    4.6303378461565452959,
    5.7694972214606914055,
    3.64784832476320460504,
    1.27045825245236838258,
    0.24178072517745061177,
    0.0227238449892691845833,
    7.7454501427834140764e-4,
];
#[allow(
    clippy::excessive_precision,
    reason = "published coefficients, quoted verbatim"
)]
const D: [f64; 8] = [
    1.0,
    2.05319162663775882187,
    1.6763848301838038494,
    0.68976733498510000455,
    0.14810397642748007459,
    0.0151986665636164571966,
    5.475938084995344946e-4,
    1.05075007164441684324e-9,
];
#[allow(
    clippy::excessive_precision,
    reason = "published coefficients, quoted verbatim"
)]
const E: [f64; 8] = [
    6.6579046435011037772,
    5.4637849111641143699,
    1.7848265399172913358,
    0.29656057182850489123,
    0.026532189526576123093,
    0.0012426609473880784386,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
];
#[allow(
    clippy::excessive_precision,
    reason = "published coefficients, quoted verbatim"
)]
const F: [f64; 8] = [
    1.0,
    0.59983220655588793769,
    0.13692988092273580531,
    0.0148753612908506148525,
    7.868691311456132591e-4,
    1.8463183175100546818e-5,
    1.4215117583164458887e-7,
    2.04426310338993978564e-15,
];

/// `num(x) / den(x)` for polynomials given lowest degree first (Horner).
#[inline]
fn ratio(num: &[f64; 8], den: &[f64; 8], x: f64) -> f64 {
    let n = num.iter().rev().fold(0.0, |acc, &c| acc * x + c);
    let d = den.iter().rev().fold(0.0, |acc, &c| acc * x + c);
    n / d
}

/// Φ⁻¹(p): the `z` with P(Z ≤ z) = p for a standard normal `Z`.
///
/// Wichura, M. J. (1988), "Algorithm AS 241: The percentage points of the normal
/// distribution", Applied Statistics 37(3), 477–484 (PPND16): three rational approximations
/// of degree 7, relative error about 1e-16 over the open interval (the algorithm of R's
/// `qnorm` and Python's `statistics.NormalDist.inv_cdf`). The monitor evaluates it once per
/// configuration, never on a hot path.
///
/// Returns `-inf` for `p == 0`, `+inf` for `p == 1` and NaN outside `[0, 1]` or for NaN.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        return q * ratio(&A, &B, 0.180625 - q * q);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    if tail <= 0.0 {
        return if q < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let r = (-tail.ln()).sqrt();
    let value = if r <= 5.0 {
        ratio(&C, &D, r - 1.6)
    } else {
        ratio(&E, &F, r - 5.0)
    };
    if q < 0.0 { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Φ(x) by composite Simpson integration of the density from 0: independent of AS 241.
    fn normal_cdf(x: f64) -> f64 {
        let steps = 20_000;
        let h = x / f64::from(steps);
        let pdf = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut sum = pdf(0.0) + pdf(x);
        for k in 1..steps {
            let weight = if k % 2 == 1 { 4.0 } else { 2.0 };
            sum += weight * pdf(f64::from(k) * h);
        }
        0.5 + sum * h / 3.0
    }

    #[test]
    fn known_quantiles() {
        // Reference values: R qnorm / published tables.
        let cases = [
            (0.5, 0.0),
            (0.95, 1.644_853_626_951_472),
            (0.975, 1.959_963_984_540_054),
            (0.99, 2.326_347_874_040_841),
            (0.995, 2.575_829_303_548_9),
            (0.999, 3.090_232_306_167_813),
            (1e-10, -6.361_340_902_404_056),
        ];
        for (p, z) in cases {
            let got = inverse_normal_cdf(p);
            assert!((got - z).abs() < 1e-9, "p {p}: {got} vs {z}");
        }
        assert_eq!(inverse_normal_cdf(0.5), 0.0);
    }

    #[test]
    fn inverts_an_independent_cdf() {
        for k in 1..200 {
            let p = 0.0005 + f64::from(k) * 0.004_995;
            let z = inverse_normal_cdf(p);
            assert!((normal_cdf(z) - p).abs() < 1e-12, "p {p} z {z}");
        }
    }

    #[test]
    fn symmetric_monotone_and_total() {
        let mut last = f64::NEG_INFINITY;
        for k in 1..10_000 {
            let p = f64::from(k) / 10_000.0;
            let z = inverse_normal_cdf(p);
            assert!(z > last, "not increasing at {p}");
            assert!((z + inverse_normal_cdf(1.0 - p)).abs() < 1e-12);
            last = z;
        }
        assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inverse_normal_cdf(1.0), f64::INFINITY);
        assert!(inverse_normal_cdf(1.5).is_nan());
        assert!(inverse_normal_cdf(f64::NAN).is_nan());
        assert!(inverse_normal_cdf(1e-300).is_finite());
    }
}
