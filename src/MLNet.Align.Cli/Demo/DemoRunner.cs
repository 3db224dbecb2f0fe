using System.Diagnostics;
using Microsoft.ML;
using MLNet.Align.Cli.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Evaluation.Baselines;
using MLNet.Align.Projection;
using MLNet.Align.Similarity;
using MLNet.Align.ZeroShot;
using Spectre.Console;

namespace MLNet.Align.Cli.Demo;

/// <summary>Settings of `mlnet-align demo`.</summary>
public sealed class DemoOptions
{
    /// <summary>Output folder (report, plots, models).</summary>
    public string Out { get; set; } = "demo-out";
    /// <summary>Small deterministic subset (about 600 pairs, 1,000 images per labelled set).</summary>
    public bool Quick { get; set; }
    /// <summary>Data folder (default OUT/data); shared between runs.</summary>
    public string? DataDirectory { get; set; }
    /// <summary>Embedding cache (default OUT/cache).</summary>
    public string? CacheDirectory { get; set; }
    /// <summary>Install missing apt/npm packages (needs root for apt).</summary>
    public bool Install { get; set; } = true;
    /// <summary>Seeds of the default recipe (report gives each and their mean).</summary>
    public int Seeds { get; set; } = 3;
    /// <summary>Also run the ablation table (each variant over the same seeds).</summary>
    public bool Ablation { get; set; }
}

/// <summary>
/// The end-to-end demo on real data with the packaged encoders (ResNet-18 + all-MiniLM-L6-v2): prepare data, encode
/// (cached), stage-1 CKA report, closed-form baselines, train the default recipe over several seeds with a zero-shot
/// proxy for model selection, zero-shot on Fashion-MNIST and MNIST, held-out retrieval, linear probe, aligned-model
/// bundle and ML.NET zero-shot zip, PredictionEngine predictions, report.json / report.md / plots.
/// </summary>
public static class DemoRunner
{
    public static int Run(DemoOptions o, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var timings = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        void Lap(string name) { timings[name] = Math.Round(clock.Elapsed.TotalSeconds, 1); clock.Restart(); }
        string outDir = Path.GetFullPath(o.Out);
        Directory.CreateDirectory(outDir);
        string dataDir = Path.GetFullPath(o.DataDirectory ?? Path.Combine(outDir, "data"));
        string cacheDir = Path.GetFullPath(o.CacheDirectory ?? Path.Combine(outDir, "cache"));
        TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));

        // 1. Data
        Rule("1/7 Data: real image-caption pairs and labelled sets");
        var prep = CliProgress.Run("Preparing data", 100, p => DataPreparer.Prepare(new DataPreparerOptions
        {
            OutputDirectory = dataDir, Quick = o.Quick, Install = o.Install,
            LabelledCount = o.Quick ? null : 5000,
        }, new PreparationBar(p), ct));
        foreach (var s in prep.Sources)
            Console.WriteLine($"  {s.Name,-12} {s.Pairs,6} pairs: {s.Train} train / {s.HeldOut} held-out / {s.Proxy} proxy");
        int probeTrain = o.Quick ? 500 : 2000;
        var probeSets = new Dictionary<string, string>();
        foreach (var l in prep.Labelled)
        {
            // Linear-probe training images come from the sets' TRAIN splits, never from the evaluated test images.
            var trainImages = l.ImagesFile.Replace("t10k", "train"); var trainLabels = l.LabelsFile.Replace("t10k", "train");
            var set = IdxReader.ReadLabelled(trainImages, trainLabels, l.ClassNames, probeTrain);
            var root = Path.Combine(dataDir, "probe", $"{l.Name.Replace("-test", "")}-train-{probeTrain}");
            ImageFolderExport.Export(set, root, null, ct);
            probeSets[l.Name] = root;
        }
        Lap("data");

        // 2. Encode
        Rule("2/7 Encoding (cached by encoder SHA-256 and input identity)");
        using var cache = new FeatureCache(cacheDir) { Progress = CliProgress.Display, Log = CliProgress.Log };
        var trainStore = cache.EncodePairs(prep.TrainTsv, ct);
        var heldStore = cache.EncodePairs(prep.HeldOutTsv, ct);
        var proxyStore = cache.EncodePairs(prep.ProxyTsv, ct);
        var train = trainStore.LoadPooled(ct);
        var held = heldStore.LoadPooled(ct);
        var proxyPairs = proxyStore.LoadPooled(ct);
        var labelled = prep.Labelled.ToDictionary(l => Key(l.Name), l => cache.EncodeImageFolder(l.Folder, ct));
        var probe = prep.Labelled.ToDictionary(l => Key(l.Name), l => cache.EncodeImageFolder(probeSets[l.Name], ct));
        Lap("encode");

        // 3. Stage 1
        Rule("3/7 Stage 1: how alike are the two embedding spaces? (CKA)");
        var probeRows = Enumerable.Range(0, Math.Min(1000, train.Count)).ToArray();
        var X1 = train.Image.SelectRows(probeRows); var T1 = train.Text!.SelectRows(probeRows);
        var shuffled = probeRows.ToArray(); new Random(0).Shuffle(shuffled);
        var stage1 = EncoderPairRanker.Rank(
            new Dictionary<string, EmbeddingMatrix> { ["resnet18"] = X1 },
            new Dictionary<string, EmbeddingMatrix> { ["all-MiniLM-L6-v2"] = T1, ["MiniLM, shuffled pairs"] = train.Text!.SelectRows(shuffled) },
            new EncoderPairRanker.Options { Metric = PairMetric.LinearCka });
        var real = stage1.Pairs.First(p => p.TextEncoder == "all-MiniLM-L6-v2");
        var ctrl = stage1.Pairs.First(p => p.TextEncoder != "all-MiniLM-L6-v2");
        Console.WriteLine($"  linear CKA {real.LinearCka:F3} (shuffled control {ctrl.LinearCka:F3}), unbiased {real.UnbiasedLinearCka:F3} ({ctrl.UnbiasedLinearCka:F3}), " +
                          $"RBF {real.KernelCka:F3}, mutual 10-NN {real.MutualKnn:F3} on {stage1.N} pairs");
        Lap("stage1");

        // Evaluation context shared by every method.
        var ml = new MLContext(seed: 0);
        var templates = DemoRecipes.Templates;
        var evalSets = prep.Labelled.ToDictionary(l => Key(l.Name), l => DemoEval.LabelledTask(Key(l.Name), labelled[Key(l.Name)], l.ClassNames, templates, cache.Text));
        var proxyTasks = DemoEval.ProxyTasks(proxyPairs, templates, cache.Text);
        var heldTask = DemoEval.RetrievalTask(held);
        var ev = new DemoEval(evalSets, proxyTasks, heldTask, train.Image);

        // 4. Baselines
        Rule("4/7 Closed-form baselines on the same cached features");
        var baselines = new Dictionary<string, IAlignedProjector>
        {
            ["least_squares"] = LeastSquaresMap.Fit(train.Image, train.Text!),
            ["reverse_ridge"] = ReverseRidgeMap.Fit(train.Image, train.Text!),
            ["procrustes"] = ProcrustesMap.Fit(train.Image, train.Text!),
            ["asif"] = AsifProjector.Fit(train.Image, train.Text!),
        };
        var baselineScores = baselines.ToDictionary(kv => kv.Key, kv => ev.Score(kv.Value));
        foreach (var (name, s) in baselineScores) Console.WriteLine("  " + DemoEval.Line(name, s));
        Lap("baselines");

        // 5. Train the default recipe over seeds
        Rule($"5/7 Training the projectors ({DemoRecipes.Default.Name}), {o.Seeds} seed(s)");
        var data = new EmbeddingStoreDataSource(trainStore);
        var seedScores = new Dictionary<string, MethodScores>();
        AlignedModel? model = null; TrainingHistory? modelHistory = null;
        for (int seed = 0; seed < o.Seeds; seed++)
        {
            var (m, h) = DemoRecipes.Train(DemoRecipes.Default, seed, data, train, ev, cache, o.Quick, ct);
            var sc = ev.Score(m);
            seedScores[$"seed{seed}"] = sc;
            Console.WriteLine("  " + DemoEval.Line($"seed {seed} (best epoch {h.BestEpoch})", sc));
            if (model is null) { model = m; modelHistory = h; } else m.Dispose();
        }
        var main = DemoEval.Mean(seedScores.Values.ToList());
        Lap("train");

        // 6. Linear probe + ablation
        Rule("6/7 Linear probe (supervised ceiling)" + (o.Ablation ? " and ablation" : ""));
        var probeResults = new Dictionary<string, LinearProbeResult>();
        foreach (var (name, set) in labelled)
        {
            var (ptrain, plabels, _) = probe[name];
            probeResults[name] = LinearProbe.Run(ptrain, plabels, set.Features, set.Labels);
            Console.WriteLine($"  {name}: top-1 {probeResults[name].Top1:P1} ({probeResults[name].NTrain} train / {probeResults[name].NTest} test)");
        }
        List<AblationRow>? ablation = null;
        if (o.Ablation)
        {
            ablation = [];
            foreach (var variant in DemoRecipes.Ablation(train.Image.Columns))
            {
                var runs = new List<MethodScores>();
                for (int seed = 0; seed < o.Seeds; seed++)
                {
                    var (m, _) = DemoRecipes.Train(variant, seed, data, train, ev, cache, o.Quick, ct);
                    runs.Add(ev.Score(m));
                    m.Dispose();
                }
                var row = DemoEval.AblationRow(variant.Name, variant.Description, runs);
                ablation.Add(row);
                Console.WriteLine($"  {variant.Name,-28} FM {row.Mean["fashion_mnist"]:P1}±{row.Std["fashion_mnist"]:P1}  MN {row.Mean["mnist"]:P1}±{row.Std["mnist"]:P1}  " +
                                  $"R@1 {row.Mean["heldout_r1"]:P1}  proxy {row.Mean["proxy"]:P1}");
            }
        }
        Lap(o.Ablation ? "probe_and_ablation" : "probe");

        // 7. Save, ML.NET zip, PredictionEngine
        Rule("7/7 Aligned model, ML.NET zero-shot zip, PredictionEngine");
        string modelDir = Path.Combine(outDir, "aligned-model");
        model!.Save(modelDir);
        var fm = prep.Labelled.First();
        var classes = ClassEmbeddingBuilder.Build(fm.ClassNames, templates, cache.Text, model);
        string zip = Path.Combine(outDir, $"zero-shot-{fm.Name}.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, model, classes, zip);
        var predictions = DemoEval.PredictWithZip(ml, zip, ImageFolderDataset.Load(fm.Folder), model, classes, cache.Image, 8);
        Lap("save_and_predict");

        // Report
        var report = new DemoReport
        {
            Quick = o.Quick,
            Encoders = new() { ["image"] = $"{cache.Image.Identity.Name} ({cache.Image.Identity.Sha256[..12]})", ["text"] = $"{cache.Text.Identity.Name} ({cache.Text.Identity.Sha256[..12]})" },
            Data = new()
            {
                ["train_pairs"] = train.Count, ["heldout_pairs"] = held.Count, ["heldout_images"] = held.UniqueImagePaths.Count, ["proxy_images"] = proxyPairs.Count,
                ["probe_train_per_set"] = probeTrain,
            },
            Recipe = DemoRecipes.Default.Description,
            Stage1 = new()
            {
                ["n"] = stage1.N, ["linear_cka"] = real.LinearCka, ["unbiased_linear_cka"] = real.UnbiasedLinearCka ?? double.NaN, ["rbf_cka"] = real.KernelCka ?? double.NaN,
                ["mutual_knn10"] = real.MutualKnn ?? double.NaN, ["linear_cka_shuffled_control"] = ctrl.LinearCka, ["unbiased_linear_cka_shuffled_control"] = ctrl.UnbiasedLinearCka ?? double.NaN,
            },
            ZeroShot = main.ZeroShot, ZeroShotStandardized = main.ZeroShotStandardized, Retrieval = main.Retrieval, ProxyTop1 = main.ProxyTop1,
            Seeds = seedScores, Baselines = baselineScores, LinearProbe = probeResults, Ablation = ablation, Predictions = predictions,
            Models = new() { ["aligned"] = modelDir, ["zero_shot_zip"] = zip },
            TimingsS = timings,
        };
        timings["total"] = Math.Round(total.Elapsed.TotalSeconds, 1);
        DemoOutput.Write(outDir, report, modelHistory!, ev, model, baselines, evalSets, stage1);
        DemoOutput.PrintSummary(report);
        model.Dispose();
        return 0;
    }

    internal static string Key(string labelledName) => labelledName switch
    {
        "fashion-mnist-test" => "fashion_mnist",
        "mnist-test" => "mnist",
        _ => labelledName.Replace('-', '_'),
    };

    private static void Rule(string title) => AnsiConsole.Write(new Rule($"[bold]{Markup.Escape(title)}[/]") { Justification = Justify.Left });
}
