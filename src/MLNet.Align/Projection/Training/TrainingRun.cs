using System.Diagnostics;
using MLNet.Align.Embeddings;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// One session of <see cref="AlignmentTrainer"/> on a built, initialised model: the objective, the regularisers, the
/// optimiser, the schedule, the epoch selector and the checkpoint, with the step and the epoch end. Owns the optimiser
/// and the regularisers (disposed with it), not the model or the objective.
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    private readonly AlignmentTrainer _trainer;
    private readonly AlignmentTrainingOptions _o;
    private readonly IAlignmentDataSource _data;
    private readonly TrainingPlan _plan;
    private readonly IContrastiveObjective _objective;
    private readonly IReadOnlyList<ITrainingRegularizer> _regularizers;
    private readonly IReadOnlyList<nn.Module> _frozen;
    private readonly ScalarSafeAdamW _optimizer;
    private readonly WarmupCosineSchedule _schedule;
    private readonly EpochSelector _selector;
    private readonly string? _checkpointPath;
    private readonly Stopwatch _clock;
    private readonly double _baseSeconds;
    private byte[]? _best;
    private readonly Generator _dropoutGenerator;
    private long _sessionSteps;
    private double _lastLoss = double.NaN, _lastLr;

    /// <summary>Freezes the frozen side, moves the network to the plan's device, builds the regularisers (the anchor
    /// copies the weights now) and the optimiser, and with <paramref name="resume"/> reads the checkpoint.</summary>
    public TrainingRun(AlignmentTrainer trainer, AlignedModel model, IAlignmentDataSource data, TrainingPlan plan, IContrastiveObjective objective, bool resume)
    {
        _trainer = trainer; _o = trainer.Options.Training; _data = data; _plan = plan; _objective = objective; Model = model;
        var net = model.Network;
        string initialHash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(model.GetWeights()));
        _frozen = WeightTransfer.FreezeSide(net, _o.Freeze);
        if (plan.Device.type != DeviceType.CPU) net.to(plan.Device);
        // The run's own generator: the process-wide one is shared with every other torch user (another training, a test).
        _dropoutGenerator = new Generator(unchecked((ulong)_o.Seed), plan.Device);
        net.SetDropoutGenerator(_dropoutGenerator);
        _regularizers = TrainingRegularizers.Create(_o, net);
        _optimizer = CreateOptimizer(net, _o, objective);
        _schedule = new WarmupCosineSchedule(_o, plan.TotalSteps);
        State = new TrainingState
        {
            OptionsKey = TrainingCheckpoint.OptionsKey(trainer.Options), DataCount = data.Count, ValidationCount = plan.ValidationRows.Length,
            ValidationChecksum = TrainingCheckpoint.RowChecksum(plan.ValidationRows), History = new TrainingHistory { Metric = _o.Metric },
            InitialWeightsHash = initialHash, ImageEncoder = model.ImageEncoder, TextEncoder = model.TextEncoder, DataDigest = data.ContentDigest,
        };
        _selector = new EpochSelector(_o, trainer.SelectionCallback, data, plan.ValidationRows, plan.WithTokens, trainer.Log,
            what => Diverged(what, State.GlobalStep, _lastLr));
        if (_o.CheckpointDirectory != null)
        {
            _checkpointPath = Path.Combine(_o.CheckpointDirectory, TrainingCheckpoint.FileName);
            TrainingCheckpoint.DeleteStaleTemps(_o.CheckpointDirectory);
        }
        if (resume)
        {
            try
            {
                if (_checkpointPath is null) throw new ArgumentException("Resume needs AlignmentTrainingOptions.CheckpointDirectory.");
                if (!File.Exists(_checkpointPath)) throw new FileNotFoundException($"No checkpoint to resume from at '{_checkpointPath}'.", _checkpointPath);
                (State, _best) = TrainingCheckpoint.Read(_checkpointPath, model, _optimizer, State, objective);
            }
            catch { Dispose(); throw; } // the caller never gets this object to dispose
            trainer.Log?.Invoke($"Resumed from {_checkpointPath} at epoch {State.Epoch}, step {State.GlobalStep}.");
        }
        _clock = Stopwatch.StartNew();
        _baseSeconds = State.History.Seconds;
    }

    public AlignedModel Model { get; }
    public TrainingState State { get; private set; }
    public bool Done => State.Finished || State.Epoch >= _o.Epochs;
    private double StepsPerSecond => _sessionSteps / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);

    /// <summary>Scores the initial model so training must beat it (SelectInitialModel).</summary>
    public void SelectInitialModel(CancellationToken ct) => _selector.SelectInitial(State, Model, ref _best, ct);

    /// <summary>Writes the checkpoint (when a directory is set).</summary>
    public void Save()
    {
        if (_checkpointPath is null) return;
        CheckFinite("before writing the checkpoint");
        State.History.Seconds = _baseSeconds + _clock.Elapsed.TotalSeconds;
        TrainingCheckpoint.Write(_checkpointPath, State, Model, _optimizer, _best, _objective);
    }

    /// <summary>The remaining steps of the current epoch, in the data source's seeded order of (seed, epoch), so a
    /// resume replays the same batches.</summary>
    public void TrainEpoch(CancellationToken ct)
    {
        var s = State;
        int epoch = s.Epoch, batch = _o.BatchSize;
        if (s.StepInEpoch >= _plan.StepsPerEpoch) return;
        var order = _data.EpochOrder(_plan.TrainRows, unchecked(_o.Seed * 1_000_003 + epoch));
        int from = s.StepInEpoch * batch, to = Math.Min(order.Length, _plan.StepsPerEpoch * batch);
        foreach (var b in _data.GetBatches(batch, new ArraySegment<long>(order, from, to - from), shuffleSeed: null, _plan.WithTokens, ct))
        {
            double lr = _schedule.At(s.GlobalStep);
            double loss = Step(b, lr, s.GlobalStep);
            if (!double.IsFinite(loss)) throw Diverged($"the loss is {loss}", s.GlobalStep + 1, lr);
            s.StepInEpoch++; s.GlobalStep++; _sessionSteps++;
            _trainer.StepHook?.Invoke();
            _lastLoss = loss; _lastLr = lr;
            float tau = Model.Network.Temperature.item<float>();
            s.History.Steps.Add(new StepLog(s.GlobalStep, epoch, loss, lr, tau));
            _trainer.Progress?.Report(new TrainingProgress(epoch, _o.Epochs, s.GlobalStep, _plan.TotalSteps, loss, lr, tau, StepsPerSecond));
            if (_o.CheckpointEverySteps > 0 && s.GlobalStep % _o.CheckpointEverySteps == 0 && s.StepInEpoch < _plan.StepsPerEpoch) Save();
            ct.ThrowIfCancellationRequested();
        }
        if (s.StepInEpoch != _plan.StepsPerEpoch)
            throw new InvalidDataException($"The data source yielded {s.StepInEpoch} batches in epoch {epoch}, expected {_plan.StepsPerEpoch} (batch size {batch}, {_plan.TrainRows.Length} training rows).");
    }

    /// <summary>Epoch end: validation, selection, best weights, early stopping, log, checkpoint.</summary>
    public void EndEpoch(Stopwatch epochClock, CancellationToken ct)
    {
        var s = State;
        int epoch = s.Epoch;
        CheckFinite($"after epoch {epoch + 1}");
        var (metrics, custom, selection) = _selector.Measure(Model, ct, _trainer.StepHook);
        bool improved = _selector.Consider(s, epoch, selection, Model, ref _best);
        var epochSteps = s.History.Steps.Where(x => x.Epoch == epoch).ToList();
        double meanLoss = epochSteps.Count > 0 ? epochSteps.Average(x => x.Loss) : double.NaN;
        s.History.Epochs.Add(new EpochLog(epoch, epochSteps.Count, meanLoss, metrics, selection, improved, epochClock.Elapsed.TotalSeconds));
        float tauNow = Model.Network.Temperature.item<float>();
        _trainer.Log?.Invoke($"epoch {epoch + 1}/{_o.Epochs}: loss {meanLoss:F4}, tau {tauNow:F4}" + _objective.Describe() +
            (metrics is null ? "" : $", val R@1 i2t {metrics.ImageToTextR1:P1} t2i {metrics.TextToImageR1:P1}, val loss {metrics.Loss:F4}") +
            (custom is double c ? $", selection {c:F4}" : "") + (improved ? " (best)" : ""));
        _trainer.Progress?.Report(new TrainingProgress(epoch, _o.Epochs, s.GlobalStep, _plan.TotalSteps, epochSteps.LastOrDefault()?.Loss ?? _lastLoss,
            _lastLr, tauNow, StepsPerSecond, metrics, selection));
        s.Epoch = epoch + 1;
        s.StepInEpoch = 0;
        _selector.UpdateStop(s);
        Save();
    }

    /// <summary>Restores the best weights (RestoreBestWeights), moves the network back to the CPU in eval mode with
    /// every gradient on, and records the summary in the model.</summary>
    public AlignmentResult Finish()
    {
        var h = State.History;
        _objective.Record(h);
        h.Seconds = _baseSeconds + _clock.Elapsed.TotalSeconds;
        if (_best != null && _o.RestoreBestWeights) Model.SetWeights(_best, "best-epoch weights");
        var net = Model.Network;
        if (_plan.Device.type != DeviceType.CPU) net.to(CPU);
        foreach (var prm in net.parameters()) prm.requires_grad = true;
        net.eval();
        var bestEpoch = h.BestEpoch;
        Model.Training = new TrainingSummary(_o, _plan.TrainRows.Length, _plan.ValidationRows.Length, State.Epoch, State.GlobalStep, bestEpoch,
            h.BestScore, _o.Metric, bestEpoch is int be ? h.Epochs.FirstOrDefault(e => e.Epoch == be)?.Validation : null, h.StopReason, h.Seconds);
        return new AlignmentResult(Model, h);
    }

    /// <summary>Refuses weights (network and objective) holding a NaN or an infinity: they must never be chosen as
    /// best, checkpointed or returned.</summary>
    /// <exception cref="TrainingDivergedException">Some weight is not finite.</exception>
    private void CheckFinite(string when)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var named = Model.Network.named_parameters().Select(x => (x.name, (Tensor)x.parameter))
            .Concat(_objective.ParameterGroups.SelectMany(g => g.Parameters).Select((prm, i) => ($"loss parameter {i}", (Tensor)prm)));
        foreach (var (name, prm) in named)
            if (!isfinite(prm).all().item<bool>())
                throw Diverged($"the weights are not finite {when} ('{name}' holds NaN or infinity)", State.GlobalStep, _lastLr);
    }

    private TrainingDivergedException Diverged(string what, long step, double lr)
    {
        var o = _o;
        string kept = _checkpointPath is null ? "" : File.Exists(_checkpointPath) ? $"; the last finite checkpoint stays in '{_checkpointPath}'" : "";
        return new TrainingDivergedException(
            $"Training diverged in epoch {State.Epoch + 1} of {o.Epochs}, step {step} of {_plan.TotalSteps}: {what}. Likely cause: the learning rate is too high " +
            $"(LearningRate {o.LearningRate:G4}, this step's {lr:G4}; try {o.LearningRate / 10:G4} or lower), or an option that scales the update or the loss " +
            $"(WeightDecay {o.WeightDecay:G4}, MaxGradientNorm {o.MaxGradientNorm?.ToString("G4") ?? "none"}, StructureWeight {o.StructureWeight:G4}, AnchorWeight {o.AnchorWeight:G4}, " +
            $"temperatures [{o.MinTemperature:G4}, {o.MaxTemperature:G4}]), or NaN/infinite training features. Nothing was saved from the diverged state{kept}.",
            State.Epoch + 1, step);
    }

    /// <summary>One optimiser step at 0-based global <paramref name="step"/>; returns the loss.</summary>
    private double Step(AlignmentBatch b, double lr, long step)
    {
        using var scope = NewDisposeScope();
        // Dropout masks depend on (seed, step) only, so a resumed run replays exactly.
        _dropoutGenerator.manual_seed(unchecked(_o.Seed * 7_919L + step * 104_729L + 1));
        var net = Model.Network;
        net.train();
        foreach (var m in _frozen) m.eval(); // a frozen side behaves as at inference (no dropout)
        _optimizer.ZeroGrad();
        long[]? groups = _plan.Groups is { } all ? b.Indices.Select(i => all[checked((int)i)]).ToArray() : null;
        foreach (var r in _regularizers) (b, groups) = r.Transform(b, groups, step);
        var (zi, zt) = AlignmentTrainer.Forward(net, b);
        var positives = groups is null ? null : ContrastiveLosses.PositiveMask(groups, zi.device);
        var loss = _objective.Loss(zi, zt, net.Temperature, positives);
        foreach (var r in _regularizers)
            if (r.Penalty(b, zi, zt, step) is { } term) loss = TorchScalars.Add(loss, term);
        loss.backward();
        if (_o.MaxGradientNorm is double max) nn.utils.clip_grad_norm_(net.parameters(), max);
        foreach (var g in _optimizer.Groups) g.LearningRate = lr;
        _optimizer.Step();
        _objective.AfterStep(net.Temperature);
        return loss.item<float>();
    }

    /// <summary>AdamW with decay on rank >= 2 weights (and tau with DecayTemperature), none on biases, then the
    /// objective's own groups; frozen parameters are left out.</summary>
    private static ScalarSafeAdamW CreateOptimizer(AlignmentNetwork net, AlignmentTrainingOptions o, IContrastiveObjective objective)
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, param) in net.named_parameters())
        {
            if (!param.requires_grad) continue; // frozen side
            bool isTau = name == "temperature";
            if (isTau && !objective.OptimizesTemperature) continue;
            if (param.dim() >= 2 || (isTau && o.DecayTemperature)) decay.Add(param); else noDecay.Add(param);
        }
        var groups = new List<(IReadOnlyList<Parameter>, double)> { (decay, o.WeightDecay), (noDecay, 0) };
        groups.AddRange(objective.ParameterGroups);
        return new ScalarSafeAdamW(groups, o.LearningRate, 0.9, 0.999, 1e-8);
    }

    public void Dispose()
    {
        try { Model.Network.SetDropoutGenerator(null); } catch (ObjectDisposedException) { } // a disposed model holds no generator
        _dropoutGenerator.Dispose();
        _optimizer.Dispose();
        foreach (var r in _regularizers) r.Dispose();
    }
}
