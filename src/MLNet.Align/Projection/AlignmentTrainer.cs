using System.Diagnostics;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>The outcome of a training run: the model (best-epoch weights when a selection metric exists and
/// <see cref="AlignmentTrainingOptions.RestoreBestWeights"/>) and the full history.</summary>
public sealed record AlignmentResult(AlignedModel Model, TrainingHistory History);

/// <summary>
/// Trains the projectors of an <see cref="AlignedModel"/> on paired features streamed from an
/// <see cref="IAlignmentDataSource"/> (docs/method.md 3.4-3.5): symmetric InfoNCE (mean of image->text and text->image
/// cross-entropy over the batch, logits = z_img z_txt^T / tau), learnable tau applied directly and clamped after
/// every step, AdamW with decay on rank >= 2 weights (and tau, as the paper's code does), per-step linear warmup then
/// cosine decay to a floor, optional gradient clipping. Each epoch it measures validation Recall@1/5/10 (both
/// directions) and an optional custom selection value, keeps the best weights and stops early after
/// <see cref="AlignmentTrainingOptions.Patience"/> epochs without improvement.
/// Checkpoints (weights, AdamW state, best weights, history, position) are written atomically every N steps and at
/// epoch ends; <see cref="Resume"/> continues after a kill and reaches bit-identical weights to an uninterrupted run
/// (same seed, 1 torch thread): every step reseeds dropout from (seed, step) and every epoch's order is the data source's seeded
/// <see cref="IAlignmentDataSource.EpochOrder"/> of (seed, epoch), so nothing depends on how the run was split into sessions.
/// The pieces are their own classes (Projection/Training/), so a recipe is data: the loss is an
/// <see cref="IContrastiveObjective"/> (InfoNCE, sigmoid), the levers a list of <see cref="ITrainingRegularizer"/>
/// (mixup, structure term, anchor), <see cref="WarmupCosineSchedule"/>, <see cref="TrainingCheckpoint"/>,
/// <see cref="EpochSelector"/>; <see cref="TrainingRun"/> holds one session's state and the step.
/// </summary>
public sealed class AlignmentTrainer
{
    /// <summary>File name of the checkpoint inside <see cref="AlignmentTrainingOptions.CheckpointDirectory"/>.</summary>
    public const string CheckpointFile = TrainingCheckpoint.FileName;

    /// <exception cref="ArgumentException">Invalid options.</exception>
    public AlignmentTrainer(AlignmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>Architecture and training settings (immutable; given at construction).</summary>
    public AlignmentOptions Options { get; }

    /// <summary>Extra per-epoch selection value, higher is better (e.g. a zero-shot proxy); used when
    /// <see cref="AlignmentTrainingOptions.Metric"/> is <see cref="SelectionMetric.Custom"/> and logged otherwise.
    /// Called with the model in its current state; it must not change the weights.</summary>
    public Func<IAlignedProjector, double>? SelectionCallback { get; init; }
    /// <summary>Sets the initial weights of a freshly built model (e.g. <see cref="ClosedFormInitializer"/>); runs
    /// before training and, deterministically again, before a resume (it defines the anchor of AnchorWeight).</summary>
    public Action<AlignedModel>? Initializer { get; init; }
    /// <summary>Progress after every step and every epoch.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Human-readable log lines (epoch summaries, checkpoints, early stop), e.g. an ML.NET channel's Info.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>An existing model whose weights seed the new one before training: the pieces of the
    /// <see cref="AlignmentTrainingOptions.Freeze"/> side (which must have the same architecture and input widths),
    /// or, with Freeze = None, every piece whose architecture and widths match (a warm start). Runs after
    /// <see cref="Initializer"/>. When both encoder identities are known, the frozen side's encoder must be the one
    /// the data was encoded with.</summary>
    public AlignedModel? InitFrom { get; init; }
    /// <summary>Recorded in the resulting model/bundle; null (the default) = the data source's
    /// (<see cref="IAlignmentDataSource.ImageEncoder"/>: a store's manifest records it).</summary>
    public EncoderIdentity? ImageEncoder { get; init; }
    /// <summary>Recorded in the resulting model/bundle; null (the default) = the data source's.</summary>
    public EncoderIdentity? TextEncoder { get; init; }
    /// <summary>How to reopen the image encoder, recorded in the resulting model/bundle (see <see cref="EncoderSource"/>);
    /// null (the default) = the data source's.</summary>
    public EncoderSource? ImageEncoderSource { get; init; }
    /// <summary>How to reopen the text encoder, recorded in the resulting model/bundle; null (the default) = the data
    /// source's.</summary>
    public EncoderSource? TextEncoderSource { get; init; }
    /// <summary>Test hook: called after every optimisation step and every validation pass (the GC stress test
    /// collects here).</summary>
    internal Action? StepHook { get; init; }

    /// <summary>Trains from scratch (an existing checkpoint in the checkpoint directory is overwritten).</summary>
    /// <param name="data">Training and validation pairs.</param>
    /// <param name="validationRows">Held-out rows; null = a seeded <see cref="AlignmentTrainingOptions.ValidationFraction"/> split.</param>
    /// <param name="cancellationToken">Cancels between steps; the last complete checkpoint stays (see
    /// <see cref="AlignmentTrainingOptions.CheckpointOnCancel"/>) and <see cref="OperationCanceledException"/> is thrown.</param>
    /// <exception cref="ArgumentException">The architecture does not fit the data's widths, or too few rows.</exception>
    /// <exception cref="TrainingDivergedException">A loss, weight or validation embedding became NaN or infinite (the
    /// message names the epoch, the step and the likely cause); nothing is written from that state.</exception>
    public AlignmentResult Fit(IAlignmentDataSource data, IReadOnlyList<long>? validationRows = null, CancellationToken cancellationToken = default)
        => Run(data, validationRows, resume: false, cancellationToken);

    /// <summary>Continues the run saved in the checkpoint directory (same data, same options).</summary>
    /// <exception cref="FileNotFoundException">No checkpoint.</exception>
    /// <exception cref="InvalidDataException">The checkpoint's SHA-256 does not match its contents, or it was written
    /// with other options, other data (rows, validation split, <see cref="IAlignmentDataSource.ContentDigest"/>), other
    /// encoders (<see cref="ImageEncoder"/>, <see cref="TextEncoder"/>) or other initial weights; the message names
    /// the file and both sides.</exception>
    /// <exception cref="TrainingDivergedException">As in <see cref="Fit"/>.</exception>
    public AlignmentResult Resume(IAlignmentDataSource data, IReadOnlyList<long>? validationRows = null, CancellationToken cancellationToken = default)
        => Run(data, validationRows, resume: true, cancellationToken);

    /// <summary>True when <paramref name="checkpointDirectory"/> holds a checkpoint that <see cref="Resume"/> can use.</summary>
    public static bool HasCheckpoint(string? checkpointDirectory)
        => checkpointDirectory != null && File.Exists(Path.Combine(checkpointDirectory, CheckpointFile));

    /// <summary>Learning rate of global step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>:
    /// linear from WarmupStartLearningRate to LearningRate over WarmupSteps, then cosine to MinLearningRate.</summary>
    public static double LearningRateAt(AlignmentTrainingOptions o, long step, long totalSteps)
        => WarmupCosineSchedule.At(o, step, totalSteps);

    /// <summary>Weight of the structure term at 0-based global step <paramref name="step"/>:
    /// StructureWeight x min(1, (step + 1) / StructureWarmupSteps), or StructureWeight without warm-up.</summary>
    public static double StructureWeightAt(AlignmentTrainingOptions o, long step)
    {
        ArgumentNullException.ThrowIfNull(o);
        return StructureRegularizer.WeightAt(o, step);
    }

    /// <summary>Optimiser steps in one epoch over <paramref name="trainRows"/> training rows: one per batch of
    /// <see cref="AlignmentTrainingOptions.BatchSize"/>, the last partial batch dropped when
    /// <see cref="AlignmentTrainingOptions.DropLastPartialBatch"/> is set and a full batch exists.</summary>
    /// <param name="trainRows">Rows trained on (data rows minus validation rows), &gt;= 0.</param>
    /// <param name="options">Training settings.</param>
    public static long StepsPerEpoch(long trainRows, AlignmentTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return TrainingPlan.StepsPerEpochOf(trainRows, options);
    }

    /// <summary>Validation rows <see cref="Fit"/> holds out of <paramref name="rows"/> data rows when no explicit
    /// validation rows are given: ValidationFraction of the rows (at least 2, at most MaxValidationRows), or 0.</summary>
    /// <param name="rows">Data rows.</param>
    /// <param name="options">Training settings.</param>
    public static long ValidationRowCount(long rows, AlignmentTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return TrainingPlan.ValidationRowCount(rows, options);
    }

    /// <summary>Total optimiser steps of a <see cref="Fit"/> on <paramref name="rows"/> data rows with the default
    /// validation split (what a progress bar needs before training starts).</summary>
    /// <param name="rows">Data rows.</param>
    /// <param name="options">Training settings.</param>
    public static long TotalSteps(long rows, AlignmentTrainingOptions options)
        => StepsPerEpoch(rows - ValidationRowCount(rows, options), options) * options.Epochs;

    /// <summary>The torch device of <paramref name="device"/> ("cpu", "cuda", "cuda:N").</summary>
    /// <exception cref="ArgumentException">Malformed device string.</exception>
    /// <exception cref="InvalidOperationException">CUDA requested but TorchSharp has no usable CUDA backend or no such device.</exception>
    public static Device ResolveDevice(string? device) => TrainingPlan.ResolveDevice(device);

    /// <summary>(CE(logits, labels) + CE(logits^T, labels)) / 2: symmetric InfoNCE over in-batch pairs.</summary>
    internal static Tensor SymmetricCrossEntropy(Tensor logits, Tensor labels) => ContrastiveLosses.SymmetricCrossEntropy(logits, labels);

    private AlignmentResult Run(IAlignmentDataSource data, IReadOnlyList<long>? validationRows, bool resume, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = Options.Training;
        var p = Options.Projector;
        var plan = TrainingPlan.Create(Options, data, validationRows, SelectionCallback is not null, InitFrom is not null || Initializer is not null, Log);
        using var objective = ContrastiveObjectives.Create(o, plan.Device);
        var model = new AlignedModel(p, data.ImageDimension, data.TextDimension,
            p.UsesImageTokens ? data.ImageTokenDimension : null, p.UsesTextTokens ? data.TextTokenDimension : null, objective.InitialTemperature, o.Seed)
        {
            ImageEncoder = ImageEncoder ?? data.ImageEncoder, TextEncoder = TextEncoder ?? data.TextEncoder,
            ImageEncoderSource = ImageEncoderSource ?? data.ImageEncoderSource, TextEncoderSource = TextEncoderSource ?? data.TextEncoderSource,
        };
        try
        {
            Initializer?.Invoke(model);
            if (InitFrom is not null)
            {
                var copied = WeightTransfer.CopyWeights(InitFrom, model, o.Freeze, model.ImageEncoder, model.TextEncoder);
                Log?.Invoke($"initialised {copied} from '{InitFrom.Name}'" + (o.Freeze == ProjectorSide.None ? "" : $"; {o.Freeze} side frozen"));
            }
            using var run = new TrainingRun(this, model, data, plan, objective, resume);
            if (!resume && o.SelectInitialModel && run.State.GlobalStep == 0) run.SelectInitialModel(ct);
            try
            {
                while (!run.Done)
                {
                    var epochClock = Stopwatch.StartNew();
                    run.TrainEpoch(ct);
                    run.EndEpoch(epochClock, ct);
                }
            }
            catch (OperationCanceledException)
            {
                if (o.CheckpointOnCancel) run.Save();
                throw;
            }
            return run.Finish();
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Projects one batch: (z_img, z_txt) [n, E] unit rows on the network's device.</summary>
    internal static (Tensor Image, Tensor Text) Forward(AlignmentNetwork net, AlignmentBatch b)
    {
        int n = b.Indices.Length;
        var ip = AlignedModel.Slice(b.ImagePooled, 0, n);
        var tp = AlignedModel.Slice(b.TextPooled, 0, n);
        Tensor? it = null, tt = null, tm = null;
        if (net.Options.UsesImageTokens)
        {
            if (b.ImageTokens is null) throw new InvalidDataException("The data source returned a batch without image tokens although tokens were requested.");
            (it, _) = AlignedModel.Tokens(b.ImageTokens, 0, n, out _);
        }
        if (net.Options.UsesTextTokens)
        {
            if (b.TextTokens is null) throw new InvalidDataException("The data source returned a batch without text tokens although tokens were requested.");
            (tt, tm) = AlignedModel.Tokens(b.TextTokens, 0, n, out _);
        }
        var dev = net.Temperature.device;
        if (dev.type != DeviceType.CPU)
        {
            ip = ip.to(dev); tp = tp.to(dev);
            it = it?.to(dev); tt = tt?.to(dev); tm = tm?.to(dev);
        }
        return (net.ForwardImage(ip, it), net.ForwardText(tp, tt, tm));
    }
}
