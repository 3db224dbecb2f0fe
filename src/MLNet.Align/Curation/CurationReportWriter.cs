using System.Text.Json;
using MLNet.Align.Charts;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Curation;

/// <summary>
/// Finishes stage 2 and writes its output set: the candidates are assigned (rarest concept first, at most
/// <c>cap</c> pairs per concept), the subset is written as a pairs file, its report as <c>STEM.report.json</c> and, where
/// the chart renderer is installed beside the application, a histogram of pairs per concept as
/// <c>STEM.histogram.png</c>. <c>curate</c>, <c>curate merge</c> and the demo write the same files through it.
/// </summary>
public static class CurationReportWriter
{
    /// <summary>Assigns <paramref name="candidates"/> and writes the subset pairs file <paramref name="outPath"/>, its
    /// report and histogram.</summary>
    /// <returns>The selection, the report, and the histogram's path (null when the renderer is not installed).</returns>
    public static (CurationResult Result, CurationReport Report, string? Histogram) Write(EmbeddingStore store, ConceptCandidates candidates, int cap,
        string outPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(candidates);
        var result = ConceptCurator.Select(candidates, cap);
        var report = ConceptCurator.WriteSubset(store, result, outPath, cancellationToken);
        string stem = Stem(outPath);
        var json = JsonSerializer.SerializeToUtf8Bytes(report, new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllBytes(stem + ".report.json", json);
        string? histogram = null;
        if (Plots.Available)
        {
            int bins = Math.Min(cap + 1, 11);
            var labels = new string[bins];
            var counts = new double[bins];
            double width = (cap + 1) / (double)bins;
            for (int b = 0; b < bins; b++)
            {
                int lo = (int)Math.Ceiling(b * width), hi = (int)Math.Ceiling((b + 1) * width) - 1;
                labels[b] = lo == hi ? $"{lo}" : $"{lo}-{hi}";
                counts[b] = report.PerConceptCounts.Count(o => o.Selected >= lo && o.Selected <= hi);
            }
            histogram = stem + ".histogram.png";
            Plots.GroupedBars(histogram, ["concepts"], labels, [counts],
                $"Pairs per concept ({report.Concepts} concepts, {report.Selected} pairs, cap {cap})", "concepts",
                subtitle: "x = pairs selected for a concept; bar height = how many concepts got that many");
        }
        return (result, report, histogram);
    }

    /// <summary>The subset path without its extension: the report is <c>STEM.report.json</c>.</summary>
    public static string Stem(string outPath) => Path.Combine(Path.GetDirectoryName(outPath)!, Path.GetFileNameWithoutExtension(outPath));
}
