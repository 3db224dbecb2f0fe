using MLNet.Align.Embeddings;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// A lever added to the contrastive objective: it may transform the batch before the forward pass (mixup) and may add a
/// weighted penalty to the loss (structure term, anchor). The trainer applies the list from
/// <see cref="TrainingRegularizers.Create"/> in order; every draw is seeded from (seed, step) so a resume replays it.
/// </summary>
internal interface ITrainingRegularizer : IDisposable
{
    /// <summary>The batch (and its positive-group ids, or null) the step trains on instead of <paramref name="batch"/>.</summary>
    (AlignmentBatch Batch, long[]? Groups) Transform(AlignmentBatch batch, long[]? groups, long step) => (batch, groups);
    /// <summary>The weighted term added to the loss at 0-based global <paramref name="step"/>, or null for none;
    /// <paramref name="batch"/> is the transformed batch, z_img, z_txt its projected unit rows [n, E].</summary>
    Tensor? Penalty(AlignmentBatch batch, Tensor zImage, Tensor zText, long step) => null;
    void IDisposable.Dispose() { }
}

/// <summary>Builds the regularisers an <see cref="AlignmentTrainingOptions"/> switches on, in the order they apply.</summary>
internal static class TrainingRegularizers
{
    /// <param name="o">Training settings (MixupAlpha, StructureWeight, AnchorWeight).</param>
    /// <param name="net">The network after initialisation: the anchor copies its weights now.</param>
    public static IReadOnlyList<ITrainingRegularizer> Create(AlignmentTrainingOptions o, AlignmentNetwork net)
    {
        var list = new List<ITrainingRegularizer>();
        if (o.MixupAlpha > 0) list.Add(new MixupRegularizer(o));
        if (o.StructureWeight > 0) list.Add(new StructureRegularizer(o));
        if (o.AnchorWeight > 0) list.Add(new AnchorRegularizer(net, o.AnchorWeight));
        return list;
    }
}

/// <summary>FuseMix latent mixup of the pooled features (<see cref="LatentMixup"/>), with probability
/// MixupProbability per batch.</summary>
internal sealed class MixupRegularizer(AlignmentTrainingOptions o) : ITrainingRegularizer
{
    public (AlignmentBatch Batch, long[]? Groups) Transform(AlignmentBatch batch, long[]? groups, long step)
    {
        int n = batch.Indices.Length;
        var (apply, lambda, perm) = LatentMixup.Draw(o.MixupAlpha, o.MixupProbability, o.Seed, step, n);
        if (!apply) return (batch, groups);
        var mixed = LatentMixup.Mix(batch, lambda, perm);
        if (groups is not { } g0) return (mixed, null);
        // A mixed pair (i, pi(i)) is a positive of (j, pi(j)) when both of its parts are: combine the group ids.
        var keys = new Dictionary<(long, long), long>();
        var combined = Enumerable.Range(0, n).Select(i => { var k = (g0[i], g0[perm[i]]); if (!keys.TryGetValue(k, out long id)) keys[k] = id = keys.Count; return id; }).ToArray();
        return (mixed, combined);
    }
}

/// <summary>Structure-preserving term: StructureWeightAt(step) x the mean over both sides of the divergence (KL or JS,
/// <see cref="ContrastiveLosses.Structure"/>) between the frozen features' and the projections' similarity graphs;
/// skipped on batches of 2 rows or fewer.</summary>
internal sealed class StructureRegularizer(AlignmentTrainingOptions o) : ITrainingRegularizer
{
    /// <summary>StructureWeight x min(1, (step + 1) / StructureWarmupSteps), or StructureWeight without warm-up.</summary>
    public static double WeightAt(AlignmentTrainingOptions o, long step)
        => o.StructureWarmupSteps > 0 && step + 1 < o.StructureWarmupSteps
            ? o.StructureWeight * (step + 1) / o.StructureWarmupSteps
            : o.StructureWeight;

    public Tensor? Penalty(AlignmentBatch batch, Tensor zImage, Tensor zText, long step)
    {
        int n = batch.Indices.Length;
        if (n <= 2) return null;
        var structure = TorchScalars.Div(TorchScalars.Add(
            ContrastiveLosses.Structure(AlignedModel.Slice(batch.ImagePooled, 0, n).to(zImage.device), zImage, o.StructureTemperature, o.StructureDivergence),
            ContrastiveLosses.Structure(AlignedModel.Slice(batch.TextPooled, 0, n).to(zText.device), zText, o.StructureTemperature, o.StructureDivergence)), 2);
        return TorchScalars.Mul(structure, WeightAt(o, step));
    }
}

/// <summary>Anchor: weight x sum over every weight tensor (not tau) of ||W - W0||^2, W0 the weights the run started
/// from (after the initialiser).</summary>
internal sealed class AnchorRegularizer : ITrainingRegularizer
{
    private readonly List<(Parameter P, Tensor W0)> _anchors = [];
    private readonly double _weight;

    public AnchorRegularizer(AlignmentNetwork net, double weight)
    {
        _weight = weight;
        foreach (var (name, prm) in net.named_parameters())
            if (name != "temperature") _anchors.Add((prm, prm.detach().clone()));
    }

    public Tensor? Penalty(AlignmentBatch batch, Tensor zImage, Tensor zText, long step)
    {
        Tensor? pull = null;
        foreach (var (prm, w0) in _anchors)
        {
            var d = TorchScalars.Pow(prm - w0, 2).sum();
            pull = pull is null ? d : TorchScalars.Add(pull, d);
        }
        return pull is null ? null : TorchScalars.Mul(pull, _weight);
    }

    public void Dispose() { foreach (var (_, w0) in _anchors) w0.Dispose(); }
}
