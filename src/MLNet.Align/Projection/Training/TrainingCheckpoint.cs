using System.Security.Cryptography;
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
    /// <summary>The encoders the training features were made with (null when the caller did not say).</summary>
    public EncoderIdentity? ImageEncoder { get; set; }
    public EncoderIdentity? TextEncoder { get; set; }
    /// <summary><see cref="IAlignmentDataSource.ContentDigest"/> of the training data, when it has one.</summary>
    public string? DataDigest { get; set; }
    public TrainingHistory History { get; set; } = new();
}

/// <summary>
/// The checkpoint file of <see cref="AlignmentTrainer"/>: magic "MLNACKPT", int32 version, the SHA-256 (32 bytes) of
/// the payload that follows, then the payload: the <see cref="TrainingState"/> as JSON, then length-prefixed blobs:
/// model weights, AdamW state, best weights (empty when none), then the objective's own state
/// (<see cref="IContrastiveObjective.WriteState"/>). Written atomically (<see cref="AtomicFile"/>): a kill or a full disk
/// leaves the previous checkpoint. Read verifies the checksum first, then that the run is the same (options, data
/// rows and digest, validation split, encoders, initial weights).
/// </summary>
internal static class TrainingCheckpoint
{
    public const string FileName = "checkpoint.bin";
    private const string Magic = "MLNACKPT";
    // 2: own GC-safe AdamW state (ScalarSafeAdamW) and the SHA-256 of the initial weights.
    // 3: SHA-256 of the payload; the encoders and the data digest in the state; the objective's state as its own part.
    private const int Version = 3;
    private const int HashBytes = 32;

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
        var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(JsonSerializer.Serialize(state, AlignmentJson.Options));
            WriteBlob(w, model.GetWeights());
            WriteBlob(w, optimizerBytes.ToArray());
            WriteBlob(w, best ?? Array.Empty<byte>());
            objective.WriteState(w);
        }
        payload.Position = 0;
        var hash = SHA256.HashData(payload);
        AtomicFile.Write(path, fs =>
        {
            fs.Write(System.Text.Encoding.ASCII.GetBytes(Magic));
            Span<byte> version = stackalloc byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(version, Version);
            fs.Write(version);
            fs.Write(hash);
            payload.Position = 0;
            payload.CopyTo(fs);
        });
    }

    /// <summary>Reads the checkpoint into <paramref name="model"/>, <paramref name="optimizer"/> and
    /// <paramref name="objective"/>; returns its state and best weights (null when none).</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint, another version, a checksum that does not match its
    /// contents, or written with other options, data, encoders or initial weights than <paramref name="expected"/>
    /// (the message names the file and both sides).</exception>
    public static (TrainingState State, byte[]? Best) Read(string path, AlignedModel model, ScalarSafeAdamW optimizer, TrainingState expected, IContrastiveObjective objective)
    {
        try
        {
            using var fs = File.OpenRead(path);
            using var r = new BinaryReader(fs);
            var magic = System.Text.Encoding.ASCII.GetString(r.ReadBytes(Magic.Length));
            if (magic != Magic) throw new InvalidDataException($"'{path}' is not an MLNet.Align checkpoint.");
            int version = r.ReadInt32();
            if (version != Version)
                throw new InvalidDataException($"Checkpoint '{path}' has version {version}; this library reads version {Version} (checksummed, with the encoders and data digest); start a new run without --resume.");
            var recorded = r.ReadBytes(HashBytes);
            if (recorded.Length != HashBytes) throw new EndOfStreamException("the checksum is cut short");
            long payloadStart = fs.Position;
            var actual = SHA256.HashData(fs);
            if (!actual.AsSpan().SequenceEqual(recorded))
                throw new InvalidDataException($"Checkpoint '{path}' is corrupt: the SHA-256 of its contents is {Convert.ToHexStringLower(actual)[..12]}, it was written as {Convert.ToHexStringLower(recorded)[..12]} (the file was changed or damaged); delete it and start a new run.");
            fs.Position = payloadStart;
            var state = JsonSerializer.Deserialize<TrainingState>(r.ReadString(), AlignmentJson.Options) ?? throw new InvalidDataException("empty state");
            CheckSameRun(path, state, expected);
            model.SetWeights(ReadBlob(r), $"Checkpoint '{path}' weights");
            var opt = ReadBlob(r);
            using (var or = new BinaryReader(new MemoryStream(opt))) optimizer.Load(or);
            var best = ReadBlob(r);
            objective.ReadState(r, $"Checkpoint '{path}'");
            if (fs.Position != fs.Length) throw new InvalidDataException($"Checkpoint '{path}' has {fs.Length - fs.Position} unexpected bytes at its end.");
            return (state, best.Length == 0 ? null : best);
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or IOException && e is not FileNotFoundException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is truncated or corrupt: {e.Message}", e);
        }
    }

    private static void CheckSameRun(string path, TrainingState state, TrainingState expected)
    {
        CheckEncoder(path, "image", state.ImageEncoder, expected.ImageEncoder);
        CheckEncoder(path, "text", state.TextEncoder, expected.TextEncoder);
        if (state.DataDigest != expected.DataDigest)
            throw new InvalidDataException($"Checkpoint '{path}' was trained on data with digest {Short(state.DataDigest)}, this run's data has digest {Short(expected.DataDigest)}: " +
                "resume on the store the checkpoint was trained on, or start a new run without --resume.");
        if (state.OptionsKey != expected.OptionsKey)
            throw new InvalidDataException($"Checkpoint '{path}' was written with different alignment options; resume with the same options or start a new run.\ncheckpoint: {state.OptionsKey}\nnow: {expected.OptionsKey}");
        if (state.DataCount != expected.DataCount || state.ValidationCount != expected.ValidationCount || state.ValidationChecksum != expected.ValidationChecksum)
            throw new InvalidDataException($"Checkpoint '{path}' was written for other data: {state.DataCount} rows ({state.ValidationCount} validation) vs now {expected.DataCount} ({expected.ValidationCount}) or a different validation split.");
        if (state.InitialWeightsHash != expected.InitialWeightsHash)
            throw new InvalidDataException($"Checkpoint '{path}' started from other initial weights (SHA-256 {Short(state.InitialWeightsHash)} vs now {Short(expected.InitialWeightsHash)}): " +
                "the initialiser (e.g. the closed-form init) or its data differ, and they anchor the regulariser; resume with the same initialiser or start a new run.");
    }

    private static void CheckEncoder(string path, string side, EncoderIdentity? trained, EncoderIdentity? now)
    {
        if (trained?.Sha256 == now?.Sha256) return;
        static string Describe(EncoderIdentity? e) => e is null ? "no recorded encoder" : $"'{e.Name}' (sha {Short(e.Sha256)})";
        throw new InvalidDataException($"Checkpoint '{path}' was trained with {side} encoder {Describe(trained)}, but this run's data was made with {Describe(now)}: " +
            "resume on the store the checkpoint was trained on, or start a new run without --resume.");
    }

    private static string Short(string? hash) => string.IsNullOrEmpty(hash) ? "(none)" : hash.Length > 12 ? hash[..12] : hash;

    public static void WriteBlob(BinaryWriter w, byte[] bytes) { w.Write(bytes.Length); w.Write(bytes); }

    public static byte[] ReadBlob(BinaryReader r)
    {
        int n = r.ReadInt32();
        var bytes = r.ReadBytes(n);
        if (bytes.Length != n) throw new EndOfStreamException($"expected {n} bytes, found {bytes.Length}");
        return bytes;
    }
}
