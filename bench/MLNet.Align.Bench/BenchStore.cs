using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;

namespace MLNet.Align.Bench;

/// <summary>
/// The store-streaming suite of `mlnet-align bench`: builds synthetic embedding stores of 10k / 200k / 1M pairs (real
/// ResNet-18 / MiniLM embeddings of the given pairs, repeated, each copy with Gaussian noise), then trains the pooled
/// projector in child processes (one process per measurement, so peak RSS is that run's own): store-fed
/// (<see cref="EmbeddingStoreDataSource"/>, full permutation; the shard-buffered shuffle once per size) against in-memory (<see cref="InMemoryAlignmentData"/>,
/// full permutation) on the same rows, interleaved, and reports steps/s, their ratio, peak RSS (VmHWM) and both loss
/// curves (what the bounded shuffle costs).
/// </summary>
internal static class BenchStore
{
    public const int ShardSize = 4096;
    private const float Noise = 0.05f;

    /// <summary>Writes (or reuses) a synthetic store of <paramref name="rows"/> pairs in <paramref name="dir"/>.</summary>
    public static string EnsureStore(string workDir, int rows, EmbeddingMatrix baseImage, EmbeddingMatrix baseText, string[] baseImagePaths)
    {
        string dir = Path.Combine(workDir, $"store-{rows}");
        if (EmbeddingStore.IsComplete(dir)) return dir;
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(workDir);
        // A pairs file whose image column cycles over real image files (the pipeline checks they exist) and whose
        // caption names the base row and the copy; the encoders below map them to base embedding + noise.
        string pairs = Path.Combine(workDir, $"pairs-{rows}.tsv");
        using (var w = new StreamWriter(pairs))
        {
            w.WriteLine("image\tcaption");
            for (int i = 0; i < rows; i++)
            {
                int b = i % baseImage.Rows;
                w.Write(baseImagePaths[b]); w.Write('\t'); w.Write(b.ToString(CultureInfo.InvariantCulture)); w.Write(' ');
                w.WriteLine(i.ToString(CultureInfo.InvariantCulture));
            }
        }
        var pathIndex = baseImagePaths.Select((p, i) => (p, i)).GroupBy(x => Path.GetFullPath(x.p)).ToDictionary(g => g.Key, g => g.First().i);
        using var image = new NoisyImageEncoder(baseImage, pathIndex);
        using var text = new NoisyTextEncoder(baseText);
        EmbeddingPipeline.Run(PairsFile.Read(pairs), dir, image, text,
            new EmbeddingPipelineOptions { ShardSize = ShardSize, DType = EmbeddingDType.Float16 });
        File.Delete(pairs);
        return dir;
    }

    /// <summary>Child process body: trains <paramref name="steps"/> steps and prints one JSON line.</summary>
    public static JsonObject TrainChild(string storeDir, string mode, int steps, int bufferShards, int threads)
    {
        var store = EmbeddingStore.Open(storeDir);
        IAlignmentDataSource data = mode switch
        {
            "store" => new EmbeddingStoreDataSource(store) { ShuffleBufferShards = bufferShards },
            "store-buffered" => new EmbeddingStoreDataSource(store) { Shuffle = StoreShuffle.ShardBuffered, ShuffleBufferShards = bufferShards },
            "memory" => Load(store),
            _ => throw new ArgumentException($"mode must be store, store-buffered or memory, got '{mode}'."),
        };
        var clock = new List<double>();
        var losses = new List<double>();
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Validation is not null) return;
            clock.Add(sw.Elapsed.TotalSeconds); losses.Add(p.Loss);
            if (clock.Count >= steps) cts.Cancel();
        });
        var trainer = new AlignmentTrainer(new AlignmentOptions
        {
            Projector = ProjectorOptions.PooledMlp(512),
            // As many epochs as the steps need, so every size trains the same number of steps.
            Training = new AlignmentTrainingOptions { Epochs = checked((int)((long)steps * 256 / store.Rows + 1)), BatchSize = 256, ValidationFraction = 0, WarmupSteps = 50, TorchThreads = threads, Seed = 1 },
        }) { Progress = progress };
        try { trainer.Fit(data, null, cts.Token).Model.Dispose(); }
        catch (OperationCanceledException) { }
        int warm = Math.Min(20, clock.Count / 4);
        double rate = (clock.Count - 1 - warm) / (clock[^1] - clock[warm]);
        return new JsonObject
        {
            ["mode"] = mode, ["rows"] = store.Rows, ["steps"] = clock.Count, ["steps_per_s"] = rate,
            ["peak_rss_mb"] = PeakRssMb(), ["buffer_shards"] = mode == "store-buffered" ? bufferShards : null,
            ["loss_every_10"] = new JsonArray(losses.Where((_, i) => i % 10 == 0).Select(l => (JsonNode)Math.Round(l, 4)).ToArray()),
            ["loss_per_step"] = new JsonArray(losses.Select(l => (JsonNode)Math.Round(l, 4)).ToArray()),
        };
    }

    private static InMemoryAlignmentData Load(EmbeddingStore store)
    {
        var p = store.LoadPooled();
        return new InMemoryAlignmentData(p.Image, p.Text!);
    }

    /// <summary>Peak resident set (VmHWM) of this process in MB, or -1 where /proc is not available.</summary>
    public static double PeakRssMb()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return double.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { }
        return -1;
    }

    /// <summary>Runs this CLI as a child process and parses the JSON line it prints last.</summary>
    public static JsonObject RunChild(params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        string? entry = Environment.GetCommandLineArgs().FirstOrDefault();
        bool viaDotnet = Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet";
        if (viaDotnet && entry != null && entry.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) psi.ArgumentList.Add(entry); // `dotnet x.dll`
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var errTask = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        if (p.ExitCode != 0 || !last.StartsWith('{'))
            throw new InvalidOperationException($"bench child `{string.Join(' ', args)}` failed (exit {p.ExitCode}): {errTask.Result.Trim()} {last}");
        return JsonNode.Parse(last)!.AsObject();
    }

    public static JsonObject Run(string workDir, EmbeddingMatrix baseImage, EmbeddingMatrix baseText, string[] baseImagePaths,
        int[] sizes, int steps, int rounds, int bufferShards, int threads, Action<string> log)
    {
        var result = new JsonObject
        {
            ["what"] = "pooled MLP 512 (PooledMlp), batch 256, AdamW; store-fed = EmbeddingStoreDataSource (fp16 shards of 4096 rows, full permutation read row by row in place, prefetch 4; 'store_shard_buffered' = the older shard-buffered shuffle, one run per size); in-memory = LoadPooled() + InMemoryAlignmentData (full permutation); each figure is its own child process",
            ["synthetic_store"] = $"{baseImage.Rows} real ResNet-18/MiniLM pairs repeated, each copy + N(0, {Noise}^2) noise",
            ["buffer_shards"] = bufferShards, ["buffer_rows"] = bufferShards * ShardSize, ["torch_threads"] = threads, ["steps"] = steps,
        };
        var stores = new Dictionary<int, string>();
        foreach (int n in sizes)
        {
            log($"store bench: building {n:N0} synthetic pairs");
            stores[n] = EnsureStore(workDir, n, baseImage, baseText, baseImagePaths);
        }
        string S(int v) => v.ToString(CultureInfo.InvariantCulture);
        // Speed: in-memory vs store-fed on the same rows, interleaved, for the sizes that fit memory comfortably.
        var speed = new JsonObject();
        foreach (int n in sizes.Where(n => n <= 200_000))
        {
            var mem = new List<double>(); var sto = new List<double>(); var ratios = new List<double>();
            JsonObject? lastMem = null, lastStore = null;
            for (int r = 0; r < rounds; r++)
            {
                log($"store bench: {n:N0} rows, round {r + 1}/{rounds}");
                lastMem = RunChild("bench", "child-train", "--store", stores[n], "--mode", "memory", "--steps", S(steps), "--threads", S(threads));
                lastStore = RunChild("bench", "child-train", "--store", stores[n], "--mode", "store", "--steps", S(steps), "--buffer-shards", S(bufferShards), "--threads", S(threads));
                mem.Add(lastMem["steps_per_s"]!.GetValue<double>()); sto.Add(lastStore["steps_per_s"]!.GetValue<double>());
                ratios.Add(sto[^1] / mem[^1]);
            }
            var buffered = RunChild("bench", "child-train", "--store", stores[n], "--mode", "store-buffered", "--steps", S(steps), "--buffer-shards", S(bufferShards), "--threads", S(threads));
            speed[S(n)] = new JsonObject
            {
                ["in_memory_steps_per_s"] = Stats.Of(mem), ["store_steps_per_s"] = Stats.Of(sto),
                ["ratio_store_vs_memory"] = Stats.Of(ratios), ["target"] = ">= 0.8",
                ["in_memory_peak_rss_mb"] = lastMem!["peak_rss_mb"]!.DeepClone(), ["store_peak_rss_mb"] = lastStore!["peak_rss_mb"]!.DeepClone(),
                ["loss_in_memory_full_permutation"] = lastMem["loss_every_10"]!.DeepClone(),
                ["loss_store_full_permutation"] = lastStore["loss_every_10"]!.DeepClone(),
                ["store_shard_buffered_steps_per_s"] = buffered["steps_per_s"]!.DeepClone(),
                ["loss_store_shard_buffered"] = buffered["loss_every_10"]!.DeepClone(),
            };
        }
        result["speed"] = speed;
        // Memory: store-fed peak RSS at each size.
        var rss = new JsonObject();
        foreach (int n in sizes)
        {
            log($"store bench: peak RSS at {n:N0} rows");
            var child = RunChild("bench", "child-train", "--store", stores[n], "--mode", "store", "--steps", S(steps), "--buffer-shards", S(bufferShards), "--threads", S(threads));
            rss[S(n)] = new JsonObject { ["peak_rss_mb"] = child["peak_rss_mb"]!.DeepClone(), ["steps_per_s"] = child["steps_per_s"]!.DeepClone() };
        }
        if (sizes.Length > 1)
        {
            double small = rss[S(sizes.Min())]!["peak_rss_mb"]!.GetValue<double>();
            double large = rss[S(sizes.Max())]!["peak_rss_mb"]!.GetValue<double>();
            rss["ratio_largest_vs_smallest"] = large / small;
            rss["target"] = "<= 1.2";
        }
        result["store_fed_peak_rss"] = rss;
        return result;
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    /// <summary>Base row's image embedding + fresh noise; the path says which base row.</summary>
    private sealed class NoisyImageEncoder(EmbeddingMatrix baseRows, Dictionary<string, int> index) : IImageEncoder
    {
        private readonly Random _rng = new(1);
        public EncoderIdentity Identity { get; } = new("bench-noisy-resnet18", new string('1', 64), baseRows.Columns, null);
        public EncodedBatch EncodeBatch(IReadOnlyList<string> imagePaths, bool withTokens = false, CancellationToken cancellationToken = default)
            => new(Noisy(baseRows, imagePaths.Select(p => index[Path.GetFullPath(p)]).ToArray(), _rng), null);
        public EncodedBatch EncodeBitmaps(IReadOnlyList<SkiaSharp.SKBitmap> images, bool withTokens = false, CancellationToken cancellationToken = default)
            => throw new NotSupportedException();
        public void Dispose() { }
    }

    /// <summary>Base row's text embedding + fresh noise; the caption starts with the base row.</summary>
    private sealed class NoisyTextEncoder(EmbeddingMatrix baseRows) : ITextEncoder
    {
        private readonly Random _rng = new(2);
        public EncoderIdentity Identity { get; } = new("bench-noisy-minilm", new string('2', 64), baseRows.Columns, null);
        public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, bool withTokens = false, CancellationToken cancellationToken = default)
            => new(Noisy(baseRows, texts.Select(t => int.Parse(t.AsSpan(0, t.IndexOf(' ')), CultureInfo.InvariantCulture)).ToArray(), _rng), null);
        public void Dispose() { }
    }

    private static EmbeddingMatrix Noisy(EmbeddingMatrix baseRows, int[] rows, Random rng)
    {
        int d = baseRows.Columns;
        var data = new float[rows.Length * d];
        for (int i = 0; i < rows.Length; i++)
        {
            var src = baseRows.Row(rows[i]);
            for (int j = 0; j < d; j++) data[i * d + j] = src[j] + Noise * (float)rng.NextGaussian();
        }
        return new EmbeddingMatrix(data, rows.Length, d);
    }
}

/// <summary>min / median / max of repeated measurements.</summary>
internal static class Stats
{
    public static JsonObject Of(IReadOnlyList<double> values)
    {
        var s = values.Order().ToArray();
        double median = s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
        return new JsonObject { ["min"] = Math.Round(s[0], 4), ["median"] = Math.Round(median, 4), ["max"] = Math.Round(s[^1], 4), ["n"] = s.Length };
    }
}

internal static class RandomGaussian
{
    /// <summary>Standard normal sample (Box-Muller).</summary>
    public static double NextGaussian(this Random rng)
    {
        double u = 1 - rng.NextDouble(), v = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
    }
}
