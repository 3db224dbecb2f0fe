using System.Globalization;
using MLNet.Align.Similarity;
using Spectre.Console;

namespace MLNet.Align.Terminal;

/// <summary>Console tables of the library's reports, shared by the commands and the demo (the files themselves are
/// written by the library's report writers beside each stage).</summary>
public static class ReportTables
{
    /// <summary>Stage 1's ranking: value [interval] / shuffled control for each metric.</summary>
    public static void Selection(EncoderSelectionReport r)
    {
        var t = new Table().Title(Markup.Escape($"Stage 1 on {r.N} probe images: value [{r.ConfidenceLevel:P0} bias-corrected bootstrap interval, {r.Bootstrap} resamples] / shuffled-pairs control"));
        foreach (var c in new[] { "#", "image", "text", r.UnbiasedHsic ? "linear CKA (unbiased)" : "linear CKA", $"RBF CKA, σ = {r.SigmaFraction:0.##} x median", $"mutual {r.KnnK}-NN" })
            t.AddColumn(Markup.Escape(c));
        static string C(MetricEstimate e) => Markup.Escape($"{EncoderSelectionReportWriter.Cell(e)} / {EncoderSelectionReportWriter.Shuffled(e)}");
        foreach (var p in r.Pairs)
            t.AddRow(p.Rank.ToString(CultureInfo.InvariantCulture), Markup.Escape(p.Image), Markup.Escape(p.Text), C(p.LinearCka), C(p.RbfCka), C(p.MutualKnn));
        AnsiConsole.Write(t);
    }
}
