using System.Text.Json;

namespace MLNet.Align.Projection;

/// <summary>Where a run stands (JSON in the checkpoint): position, early-stopping counter, what it was started with
/// (resume refuses anything else) and the history so far.</summary>
internal sealed class TrainingState
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
    /// <summary>SHA-256 (hex) of the weights the run started from (after the initialiser): the anchor of AnchorWeight
    /// and the start of the trajectory; resume refuses another.</summary>
    public string InitialWeightsHash { get; set; } = "";
    public TrainingHistory History { get; set; } = new();
}

/// <summary>
/// The checkpoint file of <see cref="AlignmentTrainer"/>: magic "MLNACKPT", int32 version, the
/// <see cref="TrainingState"/> as JSON, then length-prefixed blobs: model weights, AdamW state, best weights (empty when
/// none), then the objective's own state (<see cref="IContrastiveObjective.WriteState"/>). Written atomically
/// (<see cref="AtomicFile"/>): a kill or a full disk leaves the previous checkpoint.
/// </summary>
internal static class TrainingCheckpoint
{
    public const string FileName = "checkpoint.bin";
    private const string Magic = "MLNACKPT";
    // 2: own GC-safe AdamW state (ScalarSafeAdamW) and the SHA-256 of the initial weights.
    private const int Version = 2;

    /// <summary>Drops what a killed or failed write left: AtomicFile temps, and version 1's fixed temp name.</summary>
    public static void DeleteStaleTemps(string directory)
    {
        AtomicFile.DeleteStaleTemps(directory);
        AtomicFile.TryDelete(Path.Combine(directory, FileName + ".tmp"));
    }

    /// <summary>Options that change the trajectory must match on resume; where checkpoints go, how often and thread
    /// counts need not.</summary>
    public static string OptionsKey(AlignmentOptions options)
        => JsonSerializer.Serialize(options with
        {
            Training = options.Training with { CheckpointDirectory = null, CheckpointEverySteps = 0, CheckpointOnCancel = true, TorchThreads = null },
        }, AlignmentJson.Options);

    /// <summary>FNV-1a of the validation rows (resume refuses another split).</summary>
    public static long RowChecksum(long[] rows)
    {
        long h = 1469598103934665603L;
        foreach (var r in rows) h = unchecked((h ^ r) * 1099511628211L);
        return h;
    }

    public static void Write(string path, TrainingState state, AlignedModel model, ScalarSafeAdamW optimizer, byte[]? best, IContrastiveObjective objective)
    {
        var optimizerBytes = new MemoryStream();
        using (var w = new BinaryWriter(optimizerBytes, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.Save(w);
        var weights = model.GetWeights();
        AtomicFile.Write(path, fs =>
        {
            using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(System.Text.Encoding.ASCII.GetBytes(Magic));
            w.Write(Version);
            w.Write(JsonSerializer.Serialize(state, AlignmentJson.Options));
            WriteBlob(w, weights);
            WriteBlob(w, optimizerBytes.ToArray());
            WriteBlob(w, best ?? Array.Empty<byte>());
            objective.WriteState(w);
            w.Flush();
        });
    }

    /// <summary>Reads the checkpoint into <paramref name="model"/>, <paramref name="optimizer"/> and
    /// <paramref name="objective"/>; returns its state and best weights (null when none).</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint, another version, corrupt, or written with other options,
    /// data or initial weights than <paramref name="expected"/>.</exception>
    public static (TrainingState State, byte[]? Best) Read(string path, AlignedModel model, ScalarSafeAdamW optimizer, TrainingState expected, IContrastiveObjective objective)
    {
        try
        {
            using var fs = File.OpenRead(path);
            using var r = new BinaryReader(fs);
            var magic = System.Text.Encoding.ASCII.GetString(r.ReadBytes(Magic.Length));
            if (magic != Magic) throw new InvalidDataException($"'{path}' is not an MLNet.Align checkpoint.");
            int version = r.ReadInt32();
            if (version != Version) throw new InvalidDataException($"Checkpoint '{path}' has version {version}; this library reads version {Version}.");
            var state = JsonSerializer.Deserialize<TrainingState>(r.ReadString(), AlignmentJson.Options) ?? throw new InvalidDataException("empty state");
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
            objective.ReadState(r, $"Checkpoint '{path}'");
            return (state, best.Length == 0 ? null : best);
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or IOException && e is not FileNotFoundException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is truncated or corrupt: {e.Message}", e);
        }
    }

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] : (hash.Length == 0 ? "(none)" : hash);

    public static void WriteBlob(BinaryWriter w, byte[] bytes) { w.Write(bytes.Length); w.Write(bytes); }

    public static byte[] ReadBlob(BinaryReader r)
    {
        int n = r.ReadInt32();
        var bytes = r.ReadBytes(n);
        if (bytes.Length != n) throw new EndOfStreamException($"expected {n} bytes, found {bytes.Length}");
        return bytes;
    }
}
