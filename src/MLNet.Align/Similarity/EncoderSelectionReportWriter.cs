using System.Globalization;
using System.Text;
using System.Text.Json;
using MLNet.Align.Charts;

namespace MLNet.Align.Similarity;

/// <summary>
/// Writes stage 1's report set into a folder: <c>selection.json</c>, <c>selection.md</c> and one heatmap per metric
/// (<c>heatmap-linear-cka.png</c>, <c>heatmap-rbf-cka.png</c>, <c>heatmap-mutual-knn.png</c>; drawn only where the chart
/// renderer is installed beside the application, as with the <c>mlnet-align</c> tool). <c>select</c>, <c>select merge</c>
/// and the demo write the same files through it.
/// </summary>
public static class EncoderSelectionReportWriter
{
    /// <summary>JSON settings of selection.json (indented, enums as strings).</summary>
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    /// <summary>Writes the set into <paramref name="outDir"/> (created). The files are written into a staging folder
    /// inside it (same file system), then renamed into place with selection.json last, so a full disk or a crash never
    /// leaves selection.json without the rest.</summary>
    /// <returns>The bytes of selection.json and the heatmap files drawn (empty when the renderer is not installed).</returns>
    public static (byte[] Json, IReadOnlyList<string> Heatmaps) Write(EncoderSelectionReport report, string outDir)
    {
        ArgumentNullException.ThrowIfNull(report);
        Directory.CreateDirectory(outDir);
        var json = JsonSerializer.SerializeToUtf8Bytes(report, JsonOptions);
        string staging = Path.Combine(outDir, $".staging{AtomicFile.TempMarker}{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        IReadOnlyList<string> heatmaps;
        try
        {
            AtomicFile.WriteAllBytes(Path.Combine(staging, "selection.json"), json);
            AtomicFile.WriteAllText(Path.Combine(staging, "selection.md"), Markdown(report));
            heatmaps = Heatmaps(report, staging);
            foreach (var f in Directory.GetFiles(staging).Where(f => Path.GetFileName(f) != "selection.json").Order(StringComparer.Ordinal))
                File.Move(f, Path.Combine(outDir, Path.GetFileName(f)), overwrite: true);
            File.Move(Path.Combine(staging, "selection.json"), Path.Combine(outDir, "selection.json"), overwrite: true);
        }
        finally
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return (json, heatmaps.Select(h => Path.Combine(outDir, Path.GetFileName(h))).ToList());
    }

    private static IReadOnlyList<string> Heatmaps(EncoderSelectionReport report, string dir)
    {
        if (!Plots.Available) return [];
        var specs = new[] { PairMetric.LinearCka, PairMetric.KernelCka, PairMetric.MutualKnn }.Select(m =>
        {
            var (imgs, txts, grid) = report.Grid(m);
            var values = Enumerable.Range(0, imgs.Length).Select(i => Enumerable.Range(0, txts.Length).Select(j => (double?)grid[i, j]).ToArray()).ToArray();
            return new PlotSpec
            {
                Kind = "heatmap", Path = Path.Combine(dir, $"heatmap-{MetricSlug(m)}.png"), Values = values, RowLabels = imgs, ColumnLabels = txts,
                Title = $"{MetricTitle(m, report.UnbiasedHsic)}, n = {report.N} (rows image, columns text)", Format = "0.000",
            };
        }).ToArray();
        Plots.Render(specs);
        return specs.Select(s => s.Path).ToList();
    }

    private static string MetricSlug(PairMetric m) => m switch { PairMetric.KernelCka => "rbf-cka", PairMetric.MutualKnn => "mutual-knn", _ => "linear-cka" };

    /// <summary>The metric's name in titles and tables ("linear CKA (unbiased)", "RBF CKA", "mutual k-NN").</summary>
    public static string MetricTitle(PairMetric m, bool unbiased) => m switch
    {
        PairMetric.KernelCka => unbiased ? "RBF CKA (unbiased)" : "RBF CKA",
        PairMetric.MutualKnn => "mutual k-NN",
        _ => unbiased ? "linear CKA (unbiased)" : "linear CKA",
    };

    /// <summary>"value [low, high]" with three decimals (the value alone without an interval).</summary>
    public static string Cell(MetricEstimate e) => e.Low is double lo && e.High is double hi
        ? string.Create(CultureInfo.InvariantCulture, $"{e.Value:F3} [{lo:F3}, {hi:F3}]") : e.Value.ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>The shuffled-pairs control with three decimals, "-" when there is none.</summary>
    public static string Shuffled(MetricEstimate e) => e.Shuffled?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";

    /// <summary>The ranking as a Markdown table (the content of selection.md).</summary>
    public static string Markdown(EncoderSelectionReport r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Stage 1 on {r.N} probe images; ordered by {MetricTitle(r.Metric, r.UnbiasedHsic)}; {r.ConfidenceLevel:P0} bias-corrected bootstrap intervals ({r.Bootstrap} resamples, seed {r.Seed}: percentiles shifted back by the resampling bias, see EncoderSelection); shuffled = text rows permuted.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| # | image | text | linear CKA{(r.UnbiasedHsic ? " (unbiased)" : "")} | shuffled | RBF CKA (σ = {r.SigmaFraction:0.##} x median) | shuffled | mutual {r.KnnK}-NN | shuffled |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var p in r.Pairs)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {p.Rank} | {p.Image} | {p.Text} | {Cell(p.LinearCka)} | {Shuffled(p.LinearCka)} | {Cell(p.RbfCka)} | {Shuffled(p.RbfCka)} | {Cell(p.MutualKnn)} | {Shuffled(p.MutualKnn)} |");
        return sb.ToString();
    }
}
