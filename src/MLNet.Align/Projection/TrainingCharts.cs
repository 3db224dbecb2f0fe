using MLNet.Align.Charts;

namespace MLNet.Align.Projection;

/// <summary>The training chart written beside a trained model (by <c>train</c> and by the demo).</summary>
internal static class TrainingCharts
{
    /// <summary>Loss per step (left axis) and validation Recall@1 per epoch (right axis). The validation split is a
    /// small seeded slice of the training pairs, each query ranked among that slice only, so its Recall@1 is higher
    /// than a held-out Recall@1 over a larger candidate pool: the chart says so.</summary>
    public static void Write(TrainingHistory history, string pngPath)
    {
        // Global step at which each epoch ended (0 for the initial model, epoch -1).
        var endStep = history.Steps.GroupBy(s => s.Epoch).ToDictionary(g => g.Key, g => (double)g.Max(s => s.Step));
        double EndStep(int epoch) => endStep.Where(kv => kv.Key <= epoch).Select(kv => kv.Value).DefaultIfEmpty(0).Max();
        var lines = new List<LineSeries>
        {
            new() { Name = "training loss (InfoNCE)", X = history.Steps.Select(s => (double)s.Step).ToArray(), Y = history.Steps.Select(s => s.Loss).ToArray() },
        };
        var withVal = history.Epochs.Where(e => e.Validation != null && e.Epoch >= 0).ToList();
        int valPairs = withVal.Count > 0 ? withVal[0].Validation!.Count : 0;
        if (withVal.Count > 0)
        {
            double[] at = withVal.Select(e => EndStep(e.Epoch)).ToArray();
            lines.Add(new() { Name = "validation R@1 image->text", X = at, Y = withVal.Select(e => e.Validation!.ImageToTextR1).ToArray(), RightAxis = true });
            lines.Add(new() { Name = "validation R@1 text->image", X = at, Y = withVal.Select(e => e.Validation!.TextToImageR1).ToArray(), RightAxis = true });
        }
        var withSel = history.Epochs.Where(e => e.Selection != null && e.Epoch >= 0).ToList();
        if (withSel.Count > 0 && history.Metric == SelectionMetric.Custom)
            lines.Add(new() { Name = "selection score (custom, e.g. zero-shot proxy)", RightAxis = true,
                X = withSel.Select(e => EndStep(e.Epoch)).ToArray(),
                Y = withSel.Select(e => e.Selection!.Value).ToArray() });
        Plots.Render(new PlotSpec
        {
            Kind = "lines", Path = pngPath, Title = "Projector training: loss per step, validation Recall@1 per epoch", XLabel = "training step (batch)",
            YLabel = "symmetric InfoNCE loss",
            Y2Label = withVal.Count > 0 ? $"validation R@1 (pool of {valPairs})" + (withSel.Count > 0 && history.Metric == SelectionMetric.Custom ? "; selection" : "") : "", Width = 1000, Height = 560, Lines = lines.ToArray(),
            Subtitle = withVal.Count > 0 ? ValidationNote(valPairs) : "",
        });
    }

    /// <summary>What the training chart's validation Recall@1 is, and why it is not a held-out Recall@1.</summary>
    internal static string ValidationNote(int validationPairs)
        => $"validation = {validationPairs} training pairs held back, R@1 among those {validationPairs} only (not the held-out R@1 of a report)";
}
