using System.Diagnostics;
using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using TorchSharp;
using TorchSharp.Modules;
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
/// </summary>
public sealed class AlignmentTrainer
{
    /// <summary>File name of the checkpoint inside <see cref="AlignmentTrainingOptions.CheckpointDirectory"/>.</summary>
    public const string CheckpointFile = "checkpoint.bin";
    private const string Magic = "MLNACKPT";
    // 2: own GC-safe AdamW state (ScalarSafeAdamW) and the SHA-256 of the initial weights.
    private const int CheckpointVersion = 2;

    /// <exception cref="ArgumentException">Invalid options.</exception>
    public AlignmentTrainer(AlignmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Training.Validate();
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
    /// <summary>Recorded in the resulting model/bundle.</summary>
    public EncoderIdentity? ImageEncoder { get; init; }
    /// <summary>Recorded in the resulting model/bundle.</summary>
    public EncoderIdentity? TextEncoder { get; init; }
    /// <summary>How to reopen the image encoder, recorded in the resulting model/bundle (see <see cref="EncoderSource"/>).</summary>
    public EncoderSource? ImageEncoderSource { get; init; }
    /// <summary>How to reopen the text encoder, recorded in the resulting model/bundle.</summary>
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
    public AlignmentResult Fit(IAlignmentDataSource data, IReadOnlyList<long>? validationRows = null, CancellationToken cancellationToken = default)
        => Run(data, validationRows, resume: false, cancellationToken);

    /// <summary>Continues the run saved in the checkpoint directory (same data, same options).</summary>
    /// <exception cref="FileNotFoundException">No checkpoint.</exception>
    /// <exception cref="InvalidDataException">The checkpoint is corrupt or was written with other options or data.</exception>
    public AlignmentResult Resume(IAlignmentDataSource data, IReadOnlyList<long>? validationRows = null, CancellationToken cancellationToken = default)
        => Run(data, validationRows, resume: true, cancellationToken);

    /// <summary>True when <paramref name="checkpointDirectory"/> holds a checkpoint that <see cref="Resume"/> can use.</summary>
    public static bool HasCheckpoint(string? checkpointDirectory)
        => checkpointDirectory != null && File.Exists(Path.Combine(checkpointDirectory, CheckpointFile));

    /// <summary>Learning rate of global step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>:
    /// linear from WarmupStartLearningRate to LearningRate over WarmupSteps, then cosine to MinLearningRate.</summary>
    public static double LearningRateAt(AlignmentTrainingOptions o, long step, long totalSteps)
    {
        long warm = Math.Min(o.WarmupSteps, totalSteps);
        if (step < warm) return o.WarmupStartLearningRate + (o.LearningRate - o.WarmupStartLearningRate) * step / warm;
        double progress = (double)(step - warm) / Math.Max(1, totalSteps - warm);
        return o.MinLearningRate + 0.5 * (o.LearningRate - o.MinLearningRate) * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress)));
    }

    private sealed class State
    {
        public int Epoch { get; set; }
        public int StepInEpoch { get; set; }
        public long GlobalStep { get; set; }
        public int EpochsWithoutImprovement { get; set; }
        public bool Finished { get; set; }
        public string OptionsKey { get; set; } = "";
        public long DataCount { get; set; }
        public long ValidationCount { get; set; }
        public long ValidationChecksum { get; set; }
        /// <summary>SHA-256 (hex) of the weights the run started from (after <see cref="Initializer"/>): the anchor
        /// of AnchorWeight and the start of the trajectory; resume refuses another.</summary>
        public string InitialWeightsHash { get; set; } = "";
        public TrainingHistory History { get; set; } = new();
    }

    private AlignmentResult Run(IAlignmentDataSource data, IReadOnlyList<long>? validationRows, bool resume, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = Options.Training;
        var p = Options.Projector;
        if (o.Metric == SelectionMetric.Custom && SelectionCallback is null)
            throw new ArgumentException("Metric is Custom but no SelectionCallback was given.");
        if (o.TorchThreads is int threads) torch.set_num_threads(threads);
        p.Validate(data.ImageDimension, data.TextDimension, data.ImageTokenDimension, data.TextTokenDimension);
        var device = ResolveDevice(o.Device);
        if (o.Freeze != ProjectorSide.None && InitFrom is null && Initializer is null)
            Log?.Invoke($"warning: the {o.Freeze} side is frozen at its random initialisation (no InitFrom, no Initializer).");
        bool withTokens = p.UsesImageTokens || p.UsesTextTokens;
        if (o.MixupAlpha > 0 && withTokens)
            throw new ArgumentException($"MixupAlpha = {o.MixupAlpha} mixes pooled features only, but the projector uses token features (ImageLocal = {p.ImageLocal}, TextLocal = {p.TextLocal}); use pooled pieces or MixupAlpha = 0.");
        var groups = o.MultiPositive ? data.GroupIds : null;
        if (o.MultiPositive)
        {
            if (groups is null)
                throw new ArgumentException($"MultiPositive is set but the data source ({data.GetType().Name}) gives no positive groups (GroupIds is null): pass groupIds to InMemoryAlignmentData, use an embedding store, or set MultiPositive = false.");
            if (groups.Count != data.Count)
                throw new ArgumentException($"The data source's GroupIds holds {groups.Count} ids but the source has {data.Count} rows.");
            int distinct = groups.Distinct().Count();
            Log?.Invoke($"multi-positive: {data.Count} rows in {distinct} positive groups (largest {groups.GroupBy(g => g).Max(g => g.Count())} rows)");
        }

        var (trainRows, valRows) = Split(data.Count, validationRows, o);
        if (trainRows.Length < 2) throw new ArgumentException($"Only {trainRows.Length} training rows remain after holding out {valRows.Length} for validation; at least 2 are needed.");
        if ((o.Metric is not SelectionMetric.Custom) && valRows.Length == 0 && o.Patience != null)
            throw new ArgumentException($"Patience needs a selection value: give validation rows (or ValidationFraction > 0) or use Metric = Custom.");
        int batch = o.BatchSize;
        int stepsPerEpoch = (int)StepsPerEpoch(trainRows.Length, o);
        long totalSteps = (long)stepsPerEpoch * o.Epochs;

        var model = new AlignedModel(p, data.ImageDimension, data.TextDimension,
            p.UsesImageTokens ? data.ImageTokenDimension : null, p.UsesTextTokens ? data.TextTokenDimension : null,
            o.Loss == ContrastiveLoss.Sigmoid ? 1 / o.SigmoidInitialLogitScale : o.InitialTemperature, o.Seed)
        { ImageEncoder = ImageEncoder, TextEncoder = TextEncoder, ImageEncoderSource = ImageEncoderSource, TextEncoderSource = TextEncoderSource };
        var net = model.Network;
        var anchors = new List<(Parameter P, Tensor W0)>();
        SigmoidLossParameters? sigmoid = null;
        try
        {
            Initializer?.Invoke(model);
            if (InitFrom is not null)
            {
                var copied = CopyWeights(InitFrom, model, o.Freeze);
                Log?.Invoke($"initialised {copied} from '{InitFrom.Name}'" + (o.Freeze == ProjectorSide.None ? "" : $"; {o.Freeze} side frozen"));
            }
            string initialHash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(model.GetWeights()));
            var frozen = FreezeSide(net, o.Freeze);
            if (device.type != DeviceType.CPU) net.to(device);
            if (o.Loss == ContrastiveLoss.Sigmoid) sigmoid = new SigmoidLossParameters(o.SigmoidInitialLogitScale, o.SigmoidInitialBias, device);
            if (o.AnchorWeight > 0)
                foreach (var (name, prm) in net.named_parameters())
                    if (name != "temperature") anchors.Add((prm, prm.detach().clone()));
            using var optimizer = CreateOptimizer(net, o, sigmoid);
            var state = new State
            {
                OptionsKey = OptionsKey(Options), DataCount = data.Count, ValidationCount = valRows.Length,
                ValidationChecksum = Checksum(valRows), History = new TrainingHistory { Metric = o.Metric },
                InitialWeightsHash = initialHash,
            };
            byte[]? best = null;
            string? ckptPath = o.CheckpointDirectory is null ? null : Path.Combine(o.CheckpointDirectory, CheckpointFile);
            if (o.CheckpointDirectory != null)
            {
                // A killed or failed write leaves only temp files (AtomicFile); drop them, and version 1's fixed name.
                AtomicFile.DeleteStaleTemps(o.CheckpointDirectory);
                AtomicFile.TryDelete(Path.Combine(o.CheckpointDirectory, CheckpointFile + ".tmp"));
            }
            if (resume)
            {
                if (ckptPath is null) throw new ArgumentException("Resume needs AlignmentTrainingOptions.CheckpointDirectory.");
                if (!File.Exists(ckptPath)) throw new FileNotFoundException($"No checkpoint to resume from at '{ckptPath}'.", ckptPath);
                (state, best) = ReadCheckpoint(ckptPath, model, optimizer, state, sigmoid);
                Log?.Invoke($"Resumed from {ckptPath} at epoch {state.Epoch}, step {state.GlobalStep}.");
            }

            var clock = Stopwatch.StartNew();
            double baseSeconds = state.History.Seconds;
            long sessionSteps = 0;
            var labelsCache = new Dictionary<long, Tensor>();
            double lastLoss = double.NaN, lastLr = 0;
            void Save() { if (ckptPath != null) { state.History.Seconds = baseSeconds + clock.Elapsed.TotalSeconds; WriteCheckpoint(ckptPath, state, model, optimizer, best, sigmoid); } }

            if (!resume && o.SelectInitialModel && state.GlobalStep == 0)
            {
                ValidationMetrics? m0 = valRows.Length > 1 ? Validate(model, data, valRows, batch, withTokens, ct) : null;
                double? s0 = Selection(o.Metric, m0, SelectionCallback?.Invoke(model));
                if (s0 is double v && !double.IsNaN(v)) { state.History.BestScore = v; state.History.BestEpoch = -1; best = model.GetWeights(); }
                state.History.Epochs.Add(new EpochLog(-1, 0, double.NaN, m0, s0, s0 != null, 0));
                Log?.Invoke($"initial model: selection {s0:F4}" + (m0 is null ? "" : $", val R@1 i2t {m0.ImageToTextR1:P1} t2i {m0.TextToImageR1:P1}"));
            }

            try
            {
                while (!state.Finished && state.Epoch < o.Epochs)
                {
                    int epoch = state.Epoch;
                    var epochClock = Stopwatch.StartNew();
                    if (state.StepInEpoch < stepsPerEpoch)
                    {
                        // The source chooses an order it streams well (a full permutation in memory, a shard-buffered
                        // shuffle from the store); it depends on (seed, epoch) only, so a resume replays it.
                        var order = data.EpochOrder(trainRows, unchecked(o.Seed * 1_000_003 + epoch));
                        int from = state.StepInEpoch * batch, to = Math.Min(order.Length, stepsPerEpoch * batch);
                        var rows = new ArraySegment<long>(order, from, to - from);
                        foreach (var b in data.GetBatches(batch, rows, shuffleSeed: null, withTokens, ct))
                        {
                            double lr = LearningRateAt(o, state.GlobalStep, totalSteps);
                            double loss = TrainStep(net, optimizer, b, o, lr, state.GlobalStep, anchors, frozen, sigmoid, groups);
                            state.StepInEpoch++; state.GlobalStep++; sessionSteps++;
                            StepHook?.Invoke();
                            lastLoss = loss; lastLr = lr;
                            float tau = net.Temperature.item<float>();
                            state.History.Steps.Add(new StepLog(state.GlobalStep, epoch, loss, lr, tau));
                            Progress?.Report(new TrainingProgress(epoch, o.Epochs, state.GlobalStep, totalSteps, loss, lr, tau,
                                sessionSteps / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
                            if (o.CheckpointEverySteps > 0 && state.GlobalStep % o.CheckpointEverySteps == 0 && state.StepInEpoch < stepsPerEpoch) Save();
                            ct.ThrowIfCancellationRequested();
                        }
                        if (state.StepInEpoch != stepsPerEpoch)
                            throw new InvalidDataException($"The data source yielded {state.StepInEpoch} batches in epoch {epoch}, expected {stepsPerEpoch} (batch size {batch}, {trainRows.Length} training rows).");
                    }

                    // Epoch end: validation, selection, best weights, early stopping.
                    ValidationMetrics? metrics = valRows.Length > 1 ? Validate(model, data, valRows, batch, withTokens, ct) : null;
                    StepHook?.Invoke();
                    double? custom = SelectionCallback?.Invoke(model);
                    double? selection = Selection(o.Metric, metrics, custom);
                    bool improved = false;
                    if (selection is double s && !double.IsNaN(s))
                    {
                        var h = state.History;
                        improved = h.BestScore is not double bs || (o.Metric == SelectionMetric.ValidationLoss ? s < bs : s > bs);
                        if (improved) { h.BestScore = s; h.BestEpoch = epoch; best = model.GetWeights(); state.EpochsWithoutImprovement = 0; }
                        else state.EpochsWithoutImprovement++;
                    }
                    var epochSteps = state.History.Steps.Where(x => x.Epoch == epoch).ToList();
                    double meanLoss = epochSteps.Count > 0 ? epochSteps.Average(x => x.Loss) : double.NaN;
                    state.History.Epochs.Add(new EpochLog(epoch, epochSteps.Count, meanLoss, metrics, selection, improved, epochClock.Elapsed.TotalSeconds));
                    float tauNow = net.Temperature.item<float>();
                    Log?.Invoke($"epoch {epoch + 1}/{o.Epochs}: loss {meanLoss:F4}, tau {tauNow:F4}" +
                        (sigmoid is null ? "" : $", sigmoid bias {sigmoid.Values.Bias:F3}") +
                        (metrics is null ? "" : $", val R@1 i2t {metrics.ImageToTextR1:P1} t2i {metrics.TextToImageR1:P1}, val loss {metrics.Loss:F4}") +
                        (custom is double c ? $", selection {c:F4}" : "") + (improved ? " (best)" : ""));
                    Progress?.Report(new TrainingProgress(epoch, o.Epochs, state.GlobalStep, totalSteps, epochSteps.LastOrDefault()?.Loss ?? lastLoss,
                        lastLr, tauNow, sessionSteps / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), metrics, selection));
                    state.Epoch = epoch + 1;
                    state.StepInEpoch = 0;
                    if (o.Patience is int patience && state.EpochsWithoutImprovement >= patience)
                    {
                        state.Finished = true;
                        state.History.StopReason = "early-stopped";
                        Log?.Invoke($"Early stop: {patience} epochs without improvement of {o.Metric}.");
                    }
                    else if (state.Epoch >= o.Epochs) { state.Finished = true; state.History.StopReason = "completed"; }
                    Save();
                }
            }
            catch (OperationCanceledException)
            {
                if (o.CheckpointOnCancel) Save();
                throw;
            }
            finally
            {
                foreach (var t in labelsCache.Values) t.Dispose();
                foreach (var (_, w0) in anchors) w0.Dispose();
            }

            if (sigmoid is not null)
            {
                var (logScale, bias) = sigmoid.Values;
                state.History.SigmoidLogitScale = Math.Exp(logScale);
                state.History.SigmoidBias = bias;
            }

            state.History.Seconds = baseSeconds + clock.Elapsed.TotalSeconds;
            if (best != null && o.RestoreBestWeights) model.SetWeights(best, "best-epoch weights");
            if (device.type != DeviceType.CPU) net.to(CPU);
            foreach (var prm in net.parameters()) prm.requires_grad = true;
            net.eval();
            var bestEpoch = state.History.BestEpoch;
            model.Training = new TrainingSummary(o, trainRows.Length, valRows.Length, state.Epoch, state.GlobalStep, bestEpoch,
                state.History.BestScore, o.Metric, bestEpoch is int be ? state.History.Epochs.FirstOrDefault(e => e.Epoch == be)?.Validation : null,
                state.History.StopReason, state.History.Seconds);
            return new AlignmentResult(model, state.History);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally { sigmoid?.Dispose(); }
    }

    private static double? Selection(SelectionMetric metric, ValidationMetrics? metrics, double? custom) => metric switch
    {
        SelectionMetric.Custom => custom,
        SelectionMetric.MeanRecallAt1 => metrics?.MeanRecallAt1,
        SelectionMetric.ImageToTextRecallAt1 => metrics?.ImageToTextR1,
        SelectionMetric.TextToImageRecallAt1 => metrics?.TextToImageR1,
        SelectionMetric.RecallSum => metrics?.RecallSum,
        SelectionMetric.ValidationLoss => metrics?.Loss,
        _ => null,
    };

    /// <summary>(CE(logits, labels) + CE(logits^T, labels)) / 2: symmetric InfoNCE over in-batch pairs.</summary>
    internal static Tensor SymmetricCrossEntropy(Tensor logits, Tensor labels)
        => TorchScalars.Div(TorchScalars.Add(nn.functional.cross_entropy(logits, labels), nn.functional.cross_entropy(logits.t(), labels)), 2);

    private static double TrainStep(AlignmentNetwork net, ScalarSafeAdamW optimizer, AlignmentBatch b, AlignmentTrainingOptions o, double lr, long step,
        IReadOnlyList<(Parameter P, Tensor W0)> anchors, IReadOnlyList<nn.Module> frozen, SigmoidLossParameters? sigmoid, IReadOnlyList<long>? groups)
    {
        using var scope = NewDisposeScope();
        // Dropout masks depend on (seed, step) only, so a resumed run replays exactly.
        random.manual_seed(unchecked(o.Seed * 7_919L + step * 104_729L + 1));
        net.train();
        foreach (var m in frozen) m.eval(); // a frozen side behaves as at inference (no dropout)
        optimizer.ZeroGrad();
        int n = b.Indices.Length;
        long[]? batchGroups = groups is null ? null : b.Indices.Select(i => groups[checked((int)i)]).ToArray();
        if (o.MixupAlpha > 0)
        {
            var (apply, lambda, perm) = LatentMixup.Draw(o.MixupAlpha, o.MixupProbability, o.Seed, step, n);
            if (apply)
            {
                b = LatentMixup.Mix(b, lambda, perm);
                // A mixed pair (i, pi(i)) is a positive of (j, pi(j)) when both of its parts are: combine the group ids.
                if (batchGroups is { } g0)
                {
                    var keys = new Dictionary<(long, long), long>();
                    batchGroups = Enumerable.Range(0, n).Select(i => { var k = (g0[i], g0[perm[i]]); if (!keys.TryGetValue(k, out long id)) keys[k] = id = keys.Count; return id; }).ToArray();
                }
            }
        }
        var (zi, zt) = Forward(net, b);
        var positives = batchGroups is null ? null : ContrastiveLosses.PositiveMask(batchGroups, zi.device);
        // Number operands go through TorchScalars (GC-safe scalars); see its remarks for the crash this avoids.
        Tensor loss;
        if (sigmoid is null)
        {
            var logits = zi.matmul(zt.t()) / net.Temperature;
            loss = ContrastiveLosses.InfoNce(logits, positives);
        }
        else loss = ContrastiveLosses.Sigmoid(zi.matmul(zt.t()), sigmoid.LogScale, sigmoid.Bias, positives);
        if (o.StructureWeight > 0 && n > 2)
        {
            var structure = TorchScalars.Div(TorchScalars.Add(
                ContrastiveLosses.Structure(AlignedModel.Slice(b.ImagePooled, 0, n).to(zi.device), zi, o.StructureTemperature, o.StructureDivergence),
                ContrastiveLosses.Structure(AlignedModel.Slice(b.TextPooled, 0, n).to(zt.device), zt, o.StructureTemperature, o.StructureDivergence)), 2);
            loss = TorchScalars.Add(loss, TorchScalars.Mul(structure, StructureWeightAt(o, step)));
        }
        if (anchors.Count > 0)
        {
            Tensor? pull = null;
            foreach (var (prm, w0) in anchors)
            {
                var d = TorchScalars.Pow(prm - w0, 2).sum();
                pull = pull is null ? d : TorchScalars.Add(pull, d);
            }
            loss = TorchScalars.Add(loss, TorchScalars.Mul(pull!, o.AnchorWeight));
        }
        loss.backward();
        if (o.MaxGradientNorm is double max) nn.utils.clip_grad_norm_(net.parameters(), max);
        foreach (var g in optimizer.Groups) g.LearningRate = lr;
        optimizer.Step();
        if (sigmoid is null)
            using (no_grad()) TorchScalars.ClampInPlace(net.Temperature, (float)o.MinTemperature, (float)o.MaxTemperature);
        else sigmoid.ClampAndSync(net.Temperature, o.MinTemperature, o.MaxTemperature);
        return loss.item<float>();
    }

    /// <summary>Weight of the structure term at 0-based global step <paramref name="step"/>:
    /// StructureWeight x min(1, (step + 1) / StructureWarmupSteps), or StructureWeight without warm-up.</summary>
    public static double StructureWeightAt(AlignmentTrainingOptions o, long step)
    {
        ArgumentNullException.ThrowIfNull(o);
        return o.StructureWarmupSteps > 0 && step + 1 < o.StructureWarmupSteps
            ? o.StructureWeight * (step + 1) / o.StructureWarmupSteps
            : o.StructureWeight;
    }

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

    /// <summary>The torch device of <paramref name="device"/> ("cpu", "cuda", "cuda:N").</summary>
    /// <exception cref="ArgumentException">Malformed device string.</exception>
    /// <exception cref="InvalidOperationException">CUDA requested but TorchSharp has no usable CUDA backend or no such device.</exception>
    public static Device ResolveDevice(string? device)
    {
        var (cuda, index) = AlignmentTrainingOptions.ParseDevice(device);
        if (!cuda) return CPU;
        bool available;
        try { available = torch.cuda.is_available(); }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException) { available = false; }
        if (!available)
            throw new InvalidOperationException($"Training device '{device}' requested, but TorchSharp has no CUDA backend here (this build references TorchSharp-cpu or no CUDA driver/device is visible). Build with -p:TorchCuda=true on a machine with an NVIDIA GPU, or use --device cpu.");
        int count = torch.cuda.device_count();
        if (index >= count)
            throw new InvalidOperationException($"Training device '{device}' requested, but only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1}).");
        return torch.device(DeviceType.CUDA, index);
    }

    private static string[] SidePrefixes(ProjectorSide side) => side switch
    {
        ProjectorSide.Image => ["image_local.", "image_global."],
        ProjectorSide.Text => ["text_local.", "text_global."],
        _ => [],
    };

    /// <summary>Switches off gradients of the frozen side; returns its modules (kept in eval mode during training).</summary>
    private static IReadOnlyList<nn.Module> FreezeSide(AlignmentNetwork net, ProjectorSide side)
    {
        var prefixes = SidePrefixes(side);
        foreach (var (name, prm) in net.named_parameters())
            if (prefixes.Any(name.StartsWith)) prm.requires_grad = false;
        var modules = side switch
        {
            ProjectorSide.Image => new nn.Module?[] { net.ImageLocal, net.ImageGlobal },
            ProjectorSide.Text => new nn.Module?[] { net.TextLocal, net.TextGlobal },
            _ => [],
        };
        return modules.Where(m => m is not null).Select(m => m!).ToArray();
    }

    /// <summary>Copies parameters from <paramref name="source"/> into <paramref name="target"/>: the pieces of
    /// <paramref name="side"/> (all of them must match), or with <see cref="ProjectorSide.None"/> every piece that matches.
    /// Returns a description of what was copied.</summary>
    /// <exception cref="ArgumentException">A piece of the requested side has another architecture or input width, or its
    /// encoder identity differs from the data's.</exception>
    private string CopyWeights(AlignedModel source, AlignedModel target, ProjectorSide side)
    {
        var sp = source.Projector; var tp = target.Projector;
        if (sp.EmbeddingDimension != tp.EmbeddingDimension)
            throw new ArgumentException($"InitFrom model '{source.Name}' has embedding width {sp.EmbeddingDimension}, the new model {tp.EmbeddingDimension}.");
        bool ImageMatches() => sp.ImageLocal == tp.ImageLocal && sp.ImageGlobal == tp.ImageGlobal && source.ImageDimension == target.ImageDimension && source.ImageTokenDimension == target.ImageTokenDimension;
        bool TextMatches() => sp.TextLocal == tp.TextLocal && sp.TextGlobal == tp.TextGlobal && source.TextDimension == target.TextDimension && source.TextTokenDimension == target.TextTokenDimension;
        if (side == ProjectorSide.Image)
        {
            if (!ImageMatches())
                throw new ArgumentException($"Cannot freeze the image side from '{source.Name}': it has image pieces {sp.ImageLocal}/{sp.ImageGlobal} on {source.ImageDimension}-d (tokens {source.ImageTokenDimension?.ToString() ?? "-"}), the new model {tp.ImageLocal}/{tp.ImageGlobal} on {target.ImageDimension}-d (tokens {target.ImageTokenDimension?.ToString() ?? "-"}).");
            if (source.ImageEncoder is { } a && ImageEncoder is { } b && a.Sha256 != b.Sha256)
                throw new ArgumentException($"Cannot freeze the image side from '{source.Name}': it was trained on image encoder '{a.Name}' ({a.Sha256[..12]}), the data comes from '{b.Name}' ({b.Sha256[..12]}).");
        }
        if (side == ProjectorSide.Text)
        {
            if (!TextMatches())
                throw new ArgumentException($"Cannot freeze the text side from '{source.Name}': it has text pieces {sp.TextLocal}/{sp.TextGlobal} on {source.TextDimension}-d, the new model {tp.TextLocal}/{tp.TextGlobal} on {target.TextDimension}-d.");
            if (source.TextEncoder is { } a && TextEncoder is { } b && a.Sha256 != b.Sha256)
                throw new ArgumentException($"Cannot freeze the text side from '{source.Name}': it was trained on text encoder '{a.Name}' ({a.Sha256[..12]}), the data comes from '{b.Name}' ({b.Sha256[..12]}).");
        }
        var prefixes = side switch
        {
            ProjectorSide.None => (ImageMatches() ? SidePrefixes(ProjectorSide.Image) : []).Concat(TextMatches() ? SidePrefixes(ProjectorSide.Text) : []).ToArray(),
            _ => SidePrefixes(side),
        };
        var from = source.Network.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        int n = 0; long values = 0;
        using (no_grad())
            foreach (var (name, prm) in target.Network.named_parameters())
            {
                if (!prefixes.Any(name.StartsWith) || !from.TryGetValue(name, out var src)) continue;
                prm.copy_(src);
                n++; values += prm.numel();
            }
        return n == 0 ? "nothing (no matching piece)" : $"{n} tensors ({values:N0} weights) of {(side == ProjectorSide.None ? "the matching pieces" : $"the {side} side")}";
    }

    private static ValidationMetrics Validate(AlignedModel model, IAlignmentDataSource data, long[] rows, int batch, bool withTokens, CancellationToken ct)
    {
        using var scope = NewDisposeScope();
        var net = model.Network;
        net.eval();
        using var noGrad = no_grad();
        var images = new List<Tensor>();
        var texts = new List<Tensor>();
        foreach (var b in data.GetBatches(Math.Max(batch, 256), rows, null, withTokens, ct))
        {
            var (zi, zt) = Forward(net, b);
            images.Add(zi); texts.Add(zt);
        }
        var result = ValidationMetrics.Compute(cat(images, 0).cpu(), cat(texts, 0).cpu(), net.Temperature.item<float>());
        net.train();
        return result;
    }

    private static ScalarSafeAdamW CreateOptimizer(AlignmentNetwork net, AlignmentTrainingOptions o, SigmoidLossParameters? sigmoid)
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, param) in net.named_parameters())
        {
            if (!param.requires_grad) continue; // frozen side
            bool isTau = name == "temperature";
            if (isTau && sigmoid is not null) continue; // tau = 1/t follows the sigmoid loss's scale, not the optimiser
            if (param.dim() >= 2 || (isTau && o.DecayTemperature)) decay.Add(param); else noDecay.Add(param);
        }
        var groups = new List<(IReadOnlyList<Parameter>, double)> { (decay, o.WeightDecay), (noDecay, 0) };
        if (sigmoid is not null) groups.Add((new[] { sigmoid.LogScale, sigmoid.Bias }, 0)); // never decayed (SigLIP)
        return new ScalarSafeAdamW(groups, o.LearningRate, 0.9, 0.999, 1e-8);
    }

    /// <summary>Optimiser steps in one epoch over <paramref name="trainRows"/> training rows: one per batch of
    /// <see cref="AlignmentTrainingOptions.BatchSize"/>, the last partial batch dropped when
    /// <see cref="AlignmentTrainingOptions.DropLastPartialBatch"/> is set and a full batch exists.</summary>
    /// <param name="trainRows">Rows trained on (data rows minus validation rows), &gt;= 0.</param>
    /// <param name="options">Training settings.</param>
    public static long StepsPerEpoch(long trainRows, AlignmentTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        long batch = options.BatchSize;
        return options.DropLastPartialBatch && trainRows >= batch ? trainRows / batch : (trainRows + batch - 1) / batch;
    }

    /// <summary>Validation rows <see cref="Fit"/> holds out of <paramref name="rows"/> data rows when no explicit
    /// validation rows are given: ValidationFraction of the rows (at least 2, at most MaxValidationRows), or 0.</summary>
    /// <param name="rows">Data rows.</param>
    /// <param name="options">Training settings.</param>
    public static long ValidationRowCount(long rows, AlignmentTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.ValidationFraction > 0)) return 0;
        return Math.Min(rows, Math.Min(options.MaxValidationRows, Math.Max(2, (long)Math.Round(rows * options.ValidationFraction))));
    }

    /// <summary>Total optimiser steps of a <see cref="Fit"/> on <paramref name="rows"/> data rows with the default
    /// validation split (what a progress bar needs before training starts).</summary>
    /// <param name="rows">Data rows.</param>
    /// <param name="options">Training settings.</param>
    public static long TotalSteps(long rows, AlignmentTrainingOptions options)
        => StepsPerEpoch(rows - ValidationRowCount(rows, options), options) * options.Epochs;

    private static (long[] Train, long[] Validation) Split(long count, IReadOnlyList<long>? validationRows, AlignmentTrainingOptions o)
    {
        long[] val;
        if (validationRows != null)
        {
            foreach (var r in validationRows)
                if (r < 0 || r >= count) throw new ArgumentException($"Validation row {r} is outside [0, {count}).", nameof(validationRows));
            val = validationRows.Distinct().Order().ToArray();
        }
        else if (o.ValidationFraction > 0)
        {
            var all = new long[count];
            for (long i = 0; i < count; i++) all[i] = i;
            new Random(o.Seed).Shuffle(all);
            val = all.AsSpan(0, (int)ValidationRowCount(count, o)).ToArray();
            Array.Sort(val);
        }
        else val = Array.Empty<long>();
        var set = new HashSet<long>(val);
        var train = new long[count - val.Length];
        long at = 0;
        for (long i = 0; i < count; i++) if (!set.Contains(i)) train[at++] = i;
        return (train, val);
    }

    private static long Checksum(long[] rows)
    {
        long h = 1469598103934665603L;
        foreach (var r in rows) h = unchecked((h ^ r) * 1099511628211L);
        return h;
    }

    // Options that change the trajectory must match on resume; where checkpoints go, how often and thread counts need not.
    private static string OptionsKey(AlignmentOptions options)
        => JsonSerializer.Serialize(options with
        {
            Training = options.Training with { CheckpointDirectory = null, CheckpointEverySteps = 0, CheckpointOnCancel = true, TorchThreads = null },
        }, AlignmentJson.Options);

    private static void WriteCheckpoint(string path, State state, AlignedModel model, ScalarSafeAdamW optimizer, byte[]? best, SigmoidLossParameters? sigmoid)
    {
        var optimizerBytes = new MemoryStream();
        using (var w = new BinaryWriter(optimizerBytes, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.Save(w);
        var weights = model.GetWeights();
        // Atomic: a full disk or a kill leaves the previous checkpoint intact and no temp file behind (AtomicFile).
        AtomicFile.Write(path, fs =>
        {
            using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(System.Text.Encoding.ASCII.GetBytes(Magic));
            w.Write(CheckpointVersion);
            w.Write(JsonSerializer.Serialize(state, AlignmentJson.Options));
            WriteBlob(w, weights);
            WriteBlob(w, optimizerBytes.ToArray());
            WriteBlob(w, best ?? Array.Empty<byte>());
            // Only with Loss = Sigmoid (then the options key says so): t' and b. Other checkpoints keep version 2's layout.
            if (sigmoid is not null) WriteBlob(w, sigmoid.ToBytes());
            w.Flush();
        });
    }

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] : (hash.Length == 0 ? "(none)" : hash);

    private static void WriteBlob(BinaryWriter w, byte[] bytes) { w.Write(bytes.Length); w.Write(bytes); }

    private static byte[] ReadBlob(BinaryReader r)
    {
        int n = r.ReadInt32();
        var bytes = r.ReadBytes(n);
        if (bytes.Length != n) throw new EndOfStreamException($"expected {n} bytes, found {bytes.Length}");
        return bytes;
    }

    private (State, byte[]?) ReadCheckpoint(string path, AlignedModel model, ScalarSafeAdamW optimizer, State expected, SigmoidLossParameters? sigmoid)
    {
        try
        {
            using var fs = File.OpenRead(path);
            using var r = new BinaryReader(fs);
            var magic = System.Text.Encoding.ASCII.GetString(r.ReadBytes(Magic.Length));
            if (magic != Magic) throw new InvalidDataException($"'{path}' is not an MLNet.Align checkpoint.");
            int version = r.ReadInt32();
            if (version != CheckpointVersion) throw new InvalidDataException($"Checkpoint '{path}' has version {version}; this library reads version {CheckpointVersion}.");
            var state = JsonSerializer.Deserialize<State>(r.ReadString(), AlignmentJson.Options) ?? throw new InvalidDataException("empty state");
            if (state.OptionsKey != expected.OptionsKey)
                throw new InvalidDataException($"Checkpoint '{path}' was written with different alignment options; resume with the same options or start a new run.\ncheckpoint: {state.OptionsKey}\nnow: {expected.OptionsKey}");
            if (state.DataCount != expected.DataCount || state.ValidationCount != expected.ValidationCount || state.ValidationChecksum != expected.ValidationChecksum)
                throw new InvalidDataException($"Checkpoint '{path}' was written for other data: {state.DataCount} rows ({state.ValidationCount} validation) vs now {expected.DataCount} ({expected.ValidationCount}) or a different validation split.");
            if (state.InitialWeightsHash != expected.InitialWeightsHash)
                throw new InvalidDataException($"Checkpoint '{path}' started from other initial weights (SHA-256 {Short(state.InitialWeightsHash)} vs now {Short(expected.InitialWeightsHash)}): " +
                    "the initialiser (e.g. the closed-form init) or its data differ, and they anchor the regulariser; resume with the same initialiser or start a new run.");
            model.SetWeights(ReadBlob(r), $"Checkpoint '{path}' weights");
            var opt = ReadBlob(r);
            using (var or = new BinaryReader(new MemoryStream(opt))) optimizer.Load(or);
            var best = ReadBlob(r);
            sigmoid?.Load(ReadBlob(r), $"Checkpoint '{path}'");
            return (state, best.Length == 0 ? null : best);
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or IOException && e is not FileNotFoundException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is truncated or corrupt: {e.Message}", e);
        }
    }
}
