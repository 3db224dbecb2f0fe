using MLNet.Align.Embeddings;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>What a run will do, checked before any weight exists: the train/validation split, positive groups, steps,
/// device. Building one validates the options against the data (widths, mixup with tokens, multi-positive groups,
/// enough rows, a selection value for patience).</summary>
internal sealed record TrainingPlan(long[] TrainRows, long[] ValidationRows, IReadOnlyList<long>? Groups, bool WithTokens,
    int StepsPerEpoch, long TotalSteps, Device Device)
{
    /// <exception cref="ArgumentException">The options do not fit the data, or too few rows.</exception>
    public static TrainingPlan Create(AlignmentOptions options, IAlignmentDataSource data, IReadOnlyList<long>? validationRows,
        bool hasSelectionCallback, bool hasInitialWeights, Action<string>? log)
    {
        var o = options.Training;
        var p = options.Projector;
        if (o.Metric == SelectionMetric.Custom && !hasSelectionCallback)
            throw new ArgumentException("Metric is Custom but no SelectionCallback was given.");
        if (o.TorchThreads is int threads) torch.set_num_threads(threads);
        p.Validate(data.ImageDimension, data.TextDimension, data.ImageTokenDimension, data.TextTokenDimension);
        var device = ResolveDevice(o.Device);
        if (o.Freeze != ProjectorSide.None && !hasInitialWeights)
            log?.Invoke($"warning: the {o.Freeze} side is frozen at its random initialisation (no InitFrom, no Initializer).");
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
            log?.Invoke($"multi-positive: {data.Count} rows in {distinct} positive groups (largest {groups.GroupBy(g => g).Max(g => g.Count())} rows)");
        }

        var (trainRows, valRows) = Split(data.Count, validationRows, o);
        if (trainRows.Length < 2) throw new ArgumentException($"Only {trainRows.Length} training rows remain after holding out {valRows.Length} for validation; at least 2 are needed.");
        if ((o.Metric is not SelectionMetric.Custom) && valRows.Length == 0 && o.Patience != null)
            throw new ArgumentException($"Patience needs a selection value: give validation rows (or ValidationFraction > 0) or use Metric = Custom.");
        int stepsPerEpoch = (int)StepsPerEpochOf(trainRows.Length, o);
        return new TrainingPlan(trainRows, valRows, groups, withTokens, stepsPerEpoch, (long)stepsPerEpoch * o.Epochs, device);
    }

    /// <summary>See <see cref="AlignmentTrainer.StepsPerEpoch"/>.</summary>
    public static long StepsPerEpochOf(long trainRows, AlignmentTrainingOptions options)
    {
        long batch = options.BatchSize;
        return options.DropLastPartialBatch && trainRows >= batch ? trainRows / batch : (trainRows + batch - 1) / batch;
    }

    /// <summary>See <see cref="AlignmentTrainer.ValidationRowCount"/>.</summary>
    public static long ValidationRowCount(long rows, AlignmentTrainingOptions options)
    {
        if (!(options.ValidationFraction > 0)) return 0;
        return Math.Min(rows, Math.Min(options.MaxValidationRows, Math.Max(2, (long)Math.Round(rows * options.ValidationFraction))));
    }

    /// <summary>See <see cref="AlignmentTrainer.ResolveDevice"/>.</summary>
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
}
