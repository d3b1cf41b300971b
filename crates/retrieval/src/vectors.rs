//! The dense ranking's table of portion embeddings, stored as 8-bit integers.
//!
//! A search reads every readable row, so the scan is bound by memory: 384
//! `f32`s are 1,536 bytes a portion, 150 MiB at 100,000 portions. Each row is
//! kept instead as 384 `i8`s and one scale (its largest magnitude over 127),
//! a quarter of the bytes. The query stays in `f32`, so only the rows are
//! rounded: a row's components are each off by at most half a step, and its
//! similarity by a few thousandths of a cosine for these unit vectors (tested
//! below), far below the gaps that decide a rank among the fusion's candidates.

use crate::embed::DIMENSIONS;

/// Unit vectors, one row per portion, each as `DIMENSIONS` 8-bit steps and a scale.
#[derive(Debug, Default)]
pub struct Quantized {
    steps: Vec<i8>,
    scales: Vec<f32>,
}

impl Quantized {
    /// Appends a row (`DIMENSIONS` values).
    pub fn push(&mut self, vector: &[f32]) {
        debug_assert_eq!(vector.len(), DIMENSIONS);
        let largest = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        // In range by construction: |x / scale| ≤ 127.
        self.steps.extend(vector.iter().map(|x| (x / scale).round() as i8));
        self.scales.push(scale);
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Row `row`'s dot product with `query` (`DIMENSIONS` values): its cosine when both are unit length.
    pub fn similarity(&self, row: usize, query: &[f32]) -> f32 {
        let steps = &self.steps[row * DIMENSIONS..(row + 1) * DIMENSIONS];
        dot(steps, query) * self.scales[row]
    }
}

/// The dot product of steps and values, summed in sixteen lanes: a single
/// running sum would fix the order of the additions and keep the compiler
/// from vectorising the loop.
fn dot(steps: &[i8], values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (s_chunks, v_chunks) = (steps.chunks_exact(16), values.chunks_exact(16));
    let tail: f32 = s_chunks.remainder().iter().zip(v_chunks.remainder()).map(|(s, v)| f32::from(*s) * v).sum();
    for (s, v) in s_chunks.zip(v_chunks) {
        for lane in 0..16 {
            lanes[lane] += f32::from(s[lane]) * v[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic unit vectors spread like sentence embeddings' (xorshift).
    fn unit_vectors(count: usize, mut seed: u64) -> Vec<Vec<f32>> {
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 20_001) as f32 / 10_000.0 - 1.0
        };
        (0..count)
            .map(|_| {
                let v: Vec<f32> = (0..DIMENSIONS).map(|_| next() * next().abs()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    #[test]
    fn similarities_are_within_a_few_thousandths_of_the_exact_cosine() {
        let rows = unit_vectors(200, 0x5eed);
        let queries = unit_vectors(20, 0xfeed);
        let mut table = Quantized::default();
        rows.iter().for_each(|r| table.push(r));
        assert_eq!(table.scales.len(), rows.len());
        let mut worst = 0f32;
        for query in &queries {
            for (i, row) in rows.iter().enumerate() {
                let exact: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
                worst = worst.max((table.similarity(i, query) - exact).abs());
            }
        }
        assert!(worst < 0.004, "worst error {worst}");
    }

    #[test]
    fn a_row_is_most_similar_to_itself_and_a_zero_row_to_nothing() {
        let rows = unit_vectors(50, 7);
        let mut table = Quantized::default();
        rows.iter().for_each(|r| table.push(r));
        table.push(&[0.0; DIMENSIONS]);
        for (i, row) in rows.iter().enumerate() {
            let best =
                (0..table.scales.len()).max_by(|&a, &b| table.similarity(a, row).total_cmp(&table.similarity(b, row)));
            assert_eq!(best, Some(i));
            assert!((table.similarity(i, row) - 1.0).abs() < 0.004);
        }
        assert_eq!(table.similarity(50, &rows[0]), 0.0);
    }
}
