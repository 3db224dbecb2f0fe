using MLNet.Align.Charts;

namespace MLNet.Align.Similarity;

/// <summary>Stage 1's charts (rendered by <see cref="Plots"/>; nothing is drawn where the renderer is not installed).</summary>
internal static class SimilarityCharts
{
    /// <summary>The stage-1 heatmap: image encoders (rows) x text encoders (columns) of <paramref name="metric"/>.</summary>
    /// <param name="path">Output .png path.</param>
    /// <param name="report">The ranked pairs.</param>
    /// <param name="metric">Metric to show; null = the report's.</param>
    /// <param name="title">Title; null = "{metric} on {n} pairs (image x text encoder)". Say which rows were measured:
    /// the same metric on another sample is another number.</param>
    public static void EncoderPairHeatmap(string path, EncoderPairReport report, PairMetric? metric = null,
        string? title = null)
    {
        var (imgs, txts, grid) = report.Grid(metric);
        Plots.Heatmap(path, grid, imgs, txts, title ?? $"{metric ?? report.Metric} on {report.N} pairs (image x text encoder)");
    }
}
