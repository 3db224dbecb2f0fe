using MLNet.Align.Embeddings;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// Chooses the weights a run keeps: measures the model on the validation rows (<see cref="Measure"/>, the one place
/// the validation measure is computed), turns it into the selection value of
/// <see cref="AlignmentTrainingOptions.Metric"/>, keeps the best weights (or the initial model's, with
/// SelectInitialModel), and stops the run after <see cref="AlignmentTrainingOptions.Patience"/> epochs without improvement.
/// </summary>
internal sealed class EpochSelector(AlignmentTrainingOptions o, Func<IAlignedProjector, double>? callback,
    IAlignmentDataSource data, long[] validationRows, bool withTokens, Action<string>? log, Func<string, Exception> nonFinite)
{
    /// <summary>The validation metrics (null with fewer than 2 validation rows), the custom value and the selection value
    /// of the model as it is now. <paramref name="afterValidation"/> runs between the two (a test hook).</summary>
    public (ValidationMetrics? Metrics, double? Custom, double? Selection) Measure(AlignedModel model, CancellationToken ct, Action? afterValidation = null)
    {
        var metrics = validationRows.Length > 1 ? Validate(model, ct) : null;
        afterValidation?.Invoke();
        double? custom = callback?.Invoke(model);
        return (metrics, custom, Selection(metrics, custom));
    }

    /// <summary>Scores the initial model (epoch -1 in the history) so training must beat it to replace it.</summary>
    public void SelectInitial(TrainingState state, AlignedModel model, ref byte[]? best, CancellationToken ct)
    {
        var (m0, _, s0) = Measure(model, ct);
        if (s0 is double v && !double.IsNaN(v)) { state.History.BestScore = v; state.History.BestEpoch = -1; best = model.GetWeights(); }
        state.History.Epochs.Add(new EpochLog(-1, 0, double.NaN, m0, s0, s0 != null, 0));
        log?.Invoke($"initial model: selection {s0:F4}" + (m0 is null ? "" : $", val R@1 i2t {m0.ImageToTextR1:P1} t2i {m0.TextToImageR1:P1}"));
    }

    /// <summary>Takes epoch <paramref name="epoch"/>'s weights as the best when its selection value improves on the
    /// best so far; counts epochs without improvement. Returns whether it improved.</summary>
    public bool Consider(TrainingState state, int epoch, double? selection, AlignedModel model, ref byte[]? best)
    {
        if (selection is not double s || double.IsNaN(s)) return false;
        var h = state.History;
        bool improved = h.BestScore is not double bs || (o.Metric == SelectionMetric.ValidationLoss ? s < bs : s > bs);
        if (improved) { h.BestScore = s; h.BestEpoch = epoch; best = model.GetWeights(); state.EpochsWithoutImprovement = 0; }
        else state.EpochsWithoutImprovement++;
        return improved;
    }

    /// <summary>After an epoch: marks the run finished when patience ran out or the last epoch is done.</summary>
    public void UpdateStop(TrainingState state)
    {
        if (o.Patience is int patience && state.EpochsWithoutImprovement >= patience)
        {
            state.Finished = true;
            state.History.StopReason = "early-stopped";
            log?.Invoke($"Early stop: {patience} epochs without improvement of {o.Metric}.");
        }
        else if (state.Epoch >= o.Epochs) { state.Finished = true; state.History.StopReason = "completed"; }
    }

    private double? Selection(ValidationMetrics? metrics, double? custom) => o.Metric switch
    {
        SelectionMetric.Custom => custom,
        SelectionMetric.MeanRecallAt1 => metrics?.MeanRecallAt1,
        SelectionMetric.ImageToTextRecallAt1 => metrics?.ImageToTextR1,
        SelectionMetric.TextToImageRecallAt1 => metrics?.TextToImageR1,
        SelectionMetric.RecallSum => metrics?.RecallSum,
        SelectionMetric.ValidationLoss => metrics?.Loss,
        _ => null,
    };

    /// <summary>Projects the validation rows in batches of max(BatchSize, 256) and computes the retrieval metrics.</summary>
    /// <exception cref="Exception">What <c>nonFinite</c> makes, when an embedding is NaN or infinite.</exception>
    private ValidationMetrics Validate(AlignedModel model, CancellationToken ct)
    {
        using var scope = NewDisposeScope();
        var net = model.Network;
        net.eval();
        using var noGrad = no_grad();
        var images = new List<Tensor>();
        var texts = new List<Tensor>();
        foreach (var b in data.GetBatches(Math.Max(o.BatchSize, 256), validationRows, null, withTokens, ct))
        {
            var (zi, zt) = AlignmentTrainer.Forward(net, b);
            images.Add(zi); texts.Add(zt);
        }
        var allImages = cat(images, 0).cpu();
        var allTexts = cat(texts, 0).cpu();
        // A NaN similarity compares false with every other, so it would rank first: a NaN model would score 100%.
        if (!isfinite(allImages).all().item<bool>() || !isfinite(allTexts).all().item<bool>())
            throw nonFinite("the validation embeddings hold NaN or infinity (the weights are finite, so the validation features are not)");
        // Group-aware when the data knows its groups (pairs sharing an image or a caption): duplicates cannot fool it.
        var groups = data.GroupIds is { } ids ? validationRows.Select(r => ids[(int)r]).ToArray() : null;
        var result = ValidationMetrics.Compute(allImages, allTexts, net.Temperature.item<float>(), groups);
        net.train();
        return result;
    }
}
