using System.Diagnostics;
using Microsoft.ML;
using MLNet.Align.Demo.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Evaluation.Baselines;
using MLNet.Align.Recipes;
using MLNet.Align.Projection;
using MLNet.Align.Similarity;
using MLNet.Align.ZeroShot;
using Spectre.Console;
using MLNet.Align.Prompts;
using MLNet.Align.Terminal;

namespace MLNet.Align.Demo;

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
    /// <summary>Also run the ablation table (each variant over the same seeds) and the stage-1-vs-stage-3 check
    /// (the default recipe trained on every selection candidate).</summary>
    public bool Ablation { get; set; }
    /// <summary>Also fit every recipe on 10%, 30% and 100% of the training pairs (the data-scaling curve).</summary>
    public bool Scaling { get; set; }
    /// <summary>Pair sources and fractions (default <see cref="SourceSelection.DefaultSources"/>, whole).</summary>
    public IReadOnlyList<SourceSelection> Sources { get; set; } = SourceSelection.DefaultSources.Select(n => new SourceSelection(n)).ToList();
    /// <summary>Optional photo retrieval check: a pairs file (image + caption columns, several captions per image
    /// allowed) scored for every method and never trained on or used for selection; null = none.</summary>
    public string? PhotoPairs { get; set; }
    /// <summary>Run stage 2 (curation) and train on the curated vs a random subset of the same size.</summary>
    public bool Curate { get; set; } = true;
}

/// <summary>
/// The end-to-end demo on real data with the packaged encoders (ResNet-18 + all-MiniLM-L6-v2): prepare data, encode
/// (cached), stage-1 CKA report, closed-form baselines, train the default recipe over several seeds with a zero-shot
/// proxy for model selection, zero-shot on Fashion-MNIST and MNIST, held-out retrieval, linear probe, aligned-model
/// bundle and ML.NET zero-shot zip, PredictionEngine predictions, report.json / report.md / plots.
/// </summary>
public static class DemoRunner
{
    /// <summary>Runs the steps in order (seven, eight with stage 2), numbered once over the run, timing each, then
    /// writes the report.</summary>
    public static int Run(DemoOptions o, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        // One numbering of the steps that this run performs (stage 2 is optional).
        _step = 0; _steps = o.Curate ? 10 : 9;
        var timings = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        void Lap(string name) { timings[name] = Math.Round(clock.Elapsed.TotalSeconds, 1); clock.Restart(); }
        if (o.PhotoPairs is not null && !File.Exists(o.PhotoPairs))
            throw new FileNotFoundException($"--photo-pairs: '{Path.GetFullPath(o.PhotoPairs)}' does not exist.", o.PhotoPairs);
        string outDir = Path.GetFullPath(o.Out);
        Directory.CreateDirectory(outDir);
        using var outLock = CliLocks.Folder(outDir); // one demo per --out
        string dataDir = Path.GetFullPath(o.DataDirectory ?? Path.Combine(outDir, "data"));
        string cacheDir = Path.GetFullPath(o.CacheDirectory ?? Path.Combine(outDir, "cache"));
        TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));

        var data = PrepareData(o, dataDir, ct);
        Lap("data");

        using var cache = new FeatureCache(cacheDir) { Progress = CliProgress.Display, Log = CliProgress.Log };
        var enc = Encode(cache, data, o.PhotoPairs is null ? null : Path.GetFullPath(o.PhotoPairs), ct);
        Lap("encode");

        var stage1 = RunStage1(enc.Train);
        var selection = DemoSelectCurate.Select(enc.Train, outDir, o.Quick, ct);
        Console.WriteLine(selection.TrainedPairFirst
            ? "  The pair the demo trains (pooled ResNet-18 = layer4, all-MiniLM-L6-v2) is ranked first."
            : $"  Ranked first: {selection.Pairs[0].Image} x {selection.Pairs[0].Text}; the demo still trains the packaged pooled pair (layer4 x all-MiniLM-L6-v2), " +
              "as the zip serves the pooled output; --ablation trains every candidate.");
        Lap("stage1");

        // Evaluation context shared by every method.
        var ml = new MLContext(seed: 0);
        var templates = DemoRecipes.Templates;
        bool wordnet = File.Exists(Path.Combine(WordNetDirectory, "data.noun"));
        if (!wordnet) Console.WriteLine($"  WordNet prompts not measured: {WordNetDirectory}/data.noun is missing (apt-get install wordnet-base).");
        var evalSets = data.Prepared.Labelled.ToDictionary(l => Key(l.Name), l => DemoEval.LabelledTask(Key(l.Name), enc.Labelled[Key(l.Name)], l.ClassNames, templates, cache.Text,
            wordnet ? PromptSets.WordNet(l.ClassNames, WordNetDirectory) : null));
        var proxyTasks = DemoEval.ProxyTasks(enc.Proxy, templates, cache.Text);
        var heldTask = DemoEval.RetrievalTask(enc.HeldOut);
        var ev = new DemoEval(evalSets, proxyTasks, heldTask, enc.Train.Image, enc.Photo is null ? null : DemoEval.RetrievalTask(enc.Photo));

        var source = new EmbeddingStoreDataSource(enc.TrainStore);
        var (baselines, baselineScores) = RunBaselines(source, ev);
        Lap("baselines");

        // `train --recipe auto` on the same store: every recipe, the best kept on held-out groups; its model is served.
        Rule($"Recipes: what `train` (auto) chooses on these pairs, every recipe over {o.Seeds} seed(s) where trained" + (o.Scaling ? ", and the data-scaling curve" : ""));
        var (autoModel, auto) = DemoRecipeRun.Run(source, ev, o.Seeds, o.Quick, o.Scaling, ct);
        Lap("recipes");

        var trained = TrainSeeds(o, source, enc.Train, ev, cache, ct);
        Lap("train");

        DemoCuration? curation = null;
        if (o.Curate)
        {
            Rule($"Stage 2: curated subset (ImageNet-1k concepts, K {DemoSelectCurate.PerConcept}, cap {DemoSelectCurate.Cap}) vs a random subset of the same size, {o.Seeds} seed(s) each");
            curation = DemoSelectCurate.Curate(enc.TrainStore, enc.Train, ev, cache, outDir, o.Seeds, o.Quick, ct);
            Lap("curate");
        }

        Rule("Linear probe (supervised ceiling)" + (o.Ablation ? " and ablation" : ""));
        var probeResults = RunLinearProbes(enc);
        var ablation = o.Ablation ? RunAblation(o, source, enc.Train, ev, cache, ct) : null;
        var candidateCheck = o.Ablation ? DemoCandidateCheck.Run(data.Prepared, enc.Train, enc.HeldOut, enc.Proxy, selection, cache, templates, o.Seeds, o.Quick, ct) : null;
        Lap(o.Ablation ? "probe_and_ablation" : "probe");

        // The served model is the one `train` would give: auto's choice (seed 0).
        var model = autoModel;
        var saved = SaveAndPredict(outDir, model, data.Prepared, templates, cache, ml);
        Lap("save_and_predict");

        Rule("Search: the held-out images indexed with the served model, five text queries and one image query");
        var search = DemoSearch.Run(outDir, saved.ModelDirectory, model, enc.HeldOut, ct);
        Lap("search");

        var report = BuildReport(o, cache, data, enc, stage1, trained, baselineScores, probeResults, ablation, saved, timings) with
        {
            Selection = selection, Curation = curation, CandidateCheck = candidateCheck, PromptVariants = trained.PromptVariants, Auto = auto,
            Search = search,
        };
        timings["total"] = Math.Round(total.Elapsed.TotalSeconds, 1);
        report = DemoOutput.RelativePaths(report, outDir);
        DemoOutput.Write(outDir, report, trained.History, ev, model, baselines, evalSets, stage1.Report);
        DemoOutput.PrintSummary(report, outDir);
        model.Dispose();
        trained.Model.Dispose();
        return 0;
    }

    /// <summary>The prepared data folder and, per labelled set, the ImageFolder of its linear-probe training images.</summary>
    private sealed record PreparedData(DataPreparationResult Prepared, int ProbeTrain, Dictionary<string, string> ProbeSets);

    /// <summary>Cached features of every split and labelled set (labelled and probe sets keyed by <see cref="Key"/>).</summary>
    private sealed record EncodedData(EmbeddingStore TrainStore, StoredPairs Train, StoredPairs HeldOut, StoredPairs Proxy,
        Dictionary<string, (EmbeddingMatrix Features, int[] Labels, IReadOnlyList<string> ClassNames)> Labelled,
        Dictionary<string, (EmbeddingMatrix Features, int[] Labels, IReadOnlyList<string> ClassNames)> Probe, StoredPairs? Photo);

    /// <summary>The stage-1 report, the real pair's scores and the shuffled-pairs control's.</summary>
    private sealed record Stage1Result(EncoderPairReport Report, EncoderPairScore Real, EncoderPairScore Control)
    {
        public Dictionary<string, double> ReportValues() => new()
        {
            ["n"] = Report.N, ["linear_cka"] = Real.LinearCka, ["unbiased_linear_cka"] = Real.UnbiasedLinearCka ?? double.NaN, ["rbf_cka"] = Real.KernelCka ?? double.NaN,
            ["mutual_knn10"] = Real.MutualKnn ?? double.NaN, ["linear_cka_shuffled_control"] = Control.LinearCka, ["unbiased_linear_cka_shuffled_control"] = Control.UnbiasedLinearCka ?? double.NaN,
        };
    }

    /// <summary>The first seed's model (kept, the others disposed), its history, every seed's scores and their mean,
    /// and the prompt variants' top-1 (set -> variant -> mean over seeds).</summary>
    private sealed record TrainedSeeds(AlignedModel Model, TrainingHistory History, Dictionary<string, MethodScores> SeedScores, MethodScores Mean,
        Dictionary<string, Dictionary<string, double>> PromptVariants);

    /// <summary>Where the WordNet dictionary (Debian wordnet-base) is read for the gloss prompts.</summary>
    public const string WordNetDirectory = "/usr/share/wordnet";

    /// <summary>Where the bundle and the zip went (relative to --out), and the serving showcase.</summary>
    private sealed record SavedModel(string ModelDirectory, string Zip, List<ShowcaseRow> Predictions, ShowcaseSummary Showcase);

    /// <summary>Step: prepares the pairs and labelled sets, and exports each labelled set's TRAIN split images
    /// for the linear probe (never the evaluated test images).</summary>
    private static PreparedData PrepareData(DemoOptions o, string dataDir, CancellationToken ct)
    {
        Rule("Data: real image-caption pairs and labelled sets");
        var prep = CliProgress.Run("Preparing data", 100, p => DataPreparer.Prepare(new DataPreparerOptions
        {
            OutputDirectory = dataDir, Quick = o.Quick, Install = o.Install, Sources = o.Sources,
            LabelledCount = o.Quick ? null : 5000,
        }, new PreparationBar(p), ct), unit: CliProgress.Percent);
        foreach (var s in prep.Sources)
            Console.WriteLine($"  {s.Name,-12} {s.Pairs,6} pairs: {s.Train} train / {s.HeldOut} held-out / {s.Proxy} proxy");
        int probeTrain = o.Quick ? 500 : 2000;
        var probeSets = new Dictionary<string, string>();
        foreach (var l in prep.Labelled)
        {
            var trainImages = l.ImagesFile.Replace("t10k", "train"); var trainLabels = l.LabelsFile.Replace("t10k", "train");
            var set = IdxReader.ReadLabelled(trainImages, trainLabels, l.ClassNames, probeTrain);
            var root = Path.Combine(dataDir, "probe", $"{l.Name.Replace("-test", "")}-train-{probeTrain}");
            ImageFolderExport.Export(set, root, null, ct);
            probeSets[l.Name] = root;
        }
        return new PreparedData(prep, probeTrain, probeSets);
    }

    /// <summary>Step: encodes (or reuses from the cache) the three splits, the labelled sets and the probe sets.</summary>
    private static EncodedData Encode(FeatureCache cache, PreparedData data, string? photoPairs, CancellationToken ct)
    {
        Rule("Encoding (cached by encoder SHA-256 and input identity)");
        var prep = data.Prepared;
        var trainStore = cache.EncodePairs(prep.TrainTsv, ct);
        var heldStore = cache.EncodePairs(prep.HeldOutTsv, ct);
        var proxyStore = cache.EncodePairs(prep.ProxyTsv, ct);
        var train = trainStore.LoadPooled(ct);
        var held = heldStore.LoadPooled(ct);
        var proxyPairs = proxyStore.LoadPooled(ct);
        var labelled = prep.Labelled.ToDictionary(l => Key(l.Name), l => cache.EncodeImageFolder(l.Folder, ct));
        var probe = prep.Labelled.ToDictionary(l => Key(l.Name), l => cache.EncodeImageFolder(data.ProbeSets[l.Name], ct));
        StoredPairs? photo = null;
        if (photoPairs is not null)
        {
            if (!File.Exists(photoPairs)) throw new FileNotFoundException($"--photo-pairs: '{photoPairs}' does not exist.", photoPairs);
            var photoStore = cache.EncodePairs(photoPairs, ct);
            photo = photoStore.LoadPooled(ct);
            if (photoStore.Manifest.SkippedCount > 0)
                Console.WriteLine($"  photo check: {photoStore.Manifest.SkippedCount} item(s) of {photoPairs} could not be encoded and are not scored: " +
                                  string.Join("; ", photoStore.Manifest.Shards.SelectMany(s => s.Skipped).Take(5).Select(s => $"{s.Image}: {s.Reason}")));
            if (photo.UniqueImagePaths.Count < 2) throw new InvalidDataException($"--photo-pairs: '{photoPairs}' has {photo.UniqueImagePaths.Count} usable image(s); retrieval needs at least 2.");
            Console.WriteLine($"  photo check: {photo.UniqueImagePaths.Count} images, {photo.Count} captions from {photoPairs} (measured only, never trained on)");
        }
        return new EncodedData(trainStore, train, held, proxyPairs, labelled, probe, photo);
    }

    /// <summary>Step: CKA and mutual k-NN of the two embedding spaces on up to 1,000 training pairs, next to a
    /// shuffled-pairs control (docs/method.md section 1).</summary>
    private static Stage1Result RunStage1(StoredPairs train)
    {
        Rule("Stage 1: how alike are the two embedding spaces? (CKA)");
        var probeRows = Enumerable.Range(0, Math.Min(1000, train.Count)).ToArray();
        var X1 = train.Image.SelectRows(probeRows); var T1 = train.Text!.SelectRows(probeRows);
        var shuffled = probeRows.ToArray(); new Random(0).Shuffle(shuffled);
        var stage1 = EncoderPairRanker.Rank(
            new Dictionary<string, EmbeddingMatrix> { ["resnet18"] = X1 },
            new Dictionary<string, EmbeddingMatrix> { ["all-MiniLM-L6-v2"] = T1, ["MiniLM, shuffled pairs"] = train.Text!.SelectRows(shuffled) },
            new EncoderPairRanker.Options { Metric = PairMetric.LinearCka });
        var real = stage1.Pairs.First(p => p.TextEncoder == "all-MiniLM-L6-v2");
        var ctrl = stage1.Pairs.First(p => p.TextEncoder != "all-MiniLM-L6-v2");
        var result = new Stage1Result(stage1, real, ctrl);
        Console.WriteLine("  " + DemoOutput.Stage1Line(result.ReportValues()));
        return result;
    }

    /// <summary>Step: the closed-form recipes of the library (the same `train --recipe` fits) on every training pair,
    /// scored on the same cached features.</summary>
    private static (Dictionary<string, IAlignedProjector> Baselines, Dictionary<string, MethodScores> Scores) RunBaselines(IAlignmentDataSource data, DemoEval ev)
    {
        Rule("Closed-form recipes on the same cached features (every training pair)");
        var all = RecipeContext.AllRows(data);
        var baselines = new Dictionary<string, IAlignedProjector>
        {
            ["least_squares"] = RecipeCatalog.LeastSquares.Fit(all),
            ["reverse_ridge"] = RecipeCatalog.ReverseRidge.Fit(all),
            ["procrustes"] = RecipeCatalog.Procrustes.Fit(all),
            ["asif"] = RecipeCatalog.Asif.Fit(all),
        };
        var baselineScores = baselines.ToDictionary(kv => kv.Key, kv => ev.Score(kv.Value));
        foreach (var (name, s) in baselineScores) Console.WriteLine("  " + DemoEval.Line(name, s));
        return (baselines, baselineScores);
    }

    /// <summary>Step: trains the default recipe once per seed; keeps the first seed's model.</summary>
    private static TrainedSeeds TrainSeeds(DemoOptions o, IAlignmentDataSource data, StoredPairs train, DemoEval ev, FeatureCache cache, CancellationToken ct)
    {
        Rule($"Training the projectors ({DemoRecipes.Default.Name}), {o.Seeds} seed(s)");
        var seedScores = new Dictionary<string, MethodScores>();
        AlignedModel? model = null; TrainingHistory? modelHistory = null;
        var variants = new List<Dictionary<string, Dictionary<string, double>>>();
        for (int seed = 0; seed < o.Seeds; seed++)
        {
            var (m, h) = DemoRecipes.Train(DemoRecipes.Default, seed, data, train, ev, cache, o.Quick, ct);
            var sc = ev.Score(m);
            variants.Add(ev.PromptVariants(m));
            seedScores[$"seed{seed}"] = sc;
            Console.WriteLine("  " + DemoEval.Line($"seed {seed} (best epoch {(h.BestEpoch is int be ? (be < 0 ? "initial" : $"{be + 1}") : "-")}, 1-based)", sc));
            if (model is null) { model = m; modelHistory = h; } else m.Dispose();
        }
        var promptVariants = variants[0].ToDictionary(kv => kv.Key, kv => kv.Value.Keys.ToDictionary(v => v, v => variants.Average(x => x[kv.Key][v])));
        foreach (var (set, v) in promptVariants)
            Console.WriteLine($"  prompts, {set}: " + string.Join(", ", v.Select(kv => $"{kv.Key} {kv.Value:P1}")));
        return new TrainedSeeds(model!, modelHistory!, seedScores, DemoEval.Mean(seedScores.Values.ToList()), promptVariants);
    }

    /// <summary>Step "linear probe", first half: the supervised ceiling, a linear probe per labelled set on its probe images.</summary>
    private static Dictionary<string, LinearProbeResult> RunLinearProbes(EncodedData enc)
    {
        var probeResults = new Dictionary<string, LinearProbeResult>();
        foreach (var (name, set) in enc.Labelled)
        {
            var (ptrain, plabels, _) = enc.Probe[name];
            probeResults[name] = LinearProbe.Run(ptrain, plabels, set.Features, set.Labels);
            Console.WriteLine($"  {name}: top-1 {probeResults[name].Top1:P1} ({probeResults[name].NTrain} train / {probeResults[name].NTest} test)");
        }
        return probeResults;
    }

    /// <summary>Step "linear probe", second half (with --ablation): every ablation variant over the same seeds.</summary>
    private static List<AblationRow> RunAblation(DemoOptions o, IAlignmentDataSource data, StoredPairs train, DemoEval ev, FeatureCache cache, CancellationToken ct)
    {
        // With sources beyond the original three, every recipe row trains on the original sources' pairs (so "each
        // lever alone" compares with the old default on the old data), then each new source is added alone, trained
        // alone, and all are mixed, with the default recipe.
        var source = train.Column("source");
        var baseRows = Enumerable.Range(0, train.Count).Where(r => DemoRecipes.BaseSources.Contains(source[r])).ToArray();
        var extraSources = source.Distinct().Where(s => !DemoRecipes.BaseSources.Contains(s)).Order(StringComparer.Ordinal).ToList();
        var ablation = new List<AblationRow>();
        void Add(Recipe recipe, string name, int[]? rows)
        {
            var runs = new List<MethodScores>();
            (IAlignmentDataSource Data, EmbeddingMatrix Image, EmbeddingMatrix Text)? subset = rows is null ? null : DemoSelectCurate.Subset(train, rows);
            for (int seed = 0; seed < o.Seeds; seed++)
            {
                var (m, _) = subset is null
                    ? DemoRecipes.Train(recipe, seed, data, train, ev, cache, o.Quick, ct)
                    : DemoRecipes.Train(recipe, seed, subset.Value.Data, subset.Value.Image, subset.Value.Text, ev, cache.Image.Identity, cache.Text.Identity, o.Quick, ct);
                runs.Add(ev.Score(m));
                m.Dispose();
            }
            var row = DemoEval.AblationRow(name, recipe.Description + (rows is null ? "" : $"; trained on {rows.Length} of {train.Count} pairs"), runs);
            ablation.Add(row);
            Console.WriteLine("  " + DemoEval.RowLine(row));
        }
        int[]? recipeRows = extraSources.Count == 0 ? null : baseRows;
        foreach (var variant in DemoRecipes.Ablation(train.Image.Columns))
            Add(variant, variant.Name, recipeRows);
        if (extraSources.Count > 0)
        {
            foreach (var s in extraSources)
            {
                Add(DemoRecipes.Default, $"data: original sources + {s}", Enumerable.Range(0, train.Count).Where(r => DemoRecipes.BaseSources.Contains(source[r]) || source[r] == s).ToArray());
                Add(DemoRecipes.Default, $"data: {s} only", Enumerable.Range(0, train.Count).Where(r => source[r] == s).ToArray());
            }
            Add(DemoRecipes.Default, $"data: all {DemoRecipes.BaseSources.Count + extraSources.Count} sources", null);
            // Extra views (another rendering of the same caption) are where several positives per item exist.
            Add(DemoRecipes.Default with { Training = DemoRecipes.Default.Training with { MultiPositive = true } },
                $"data: all {DemoRecipes.BaseSources.Count + extraSources.Count} sources + multi-positive", null);
        }
        return ablation;
    }

    /// <summary>Step: saves the aligned-model bundle, builds the ML.NET zero-shot zip for the first labelled set,
    /// reloads it and classifies the serving showcase's images (<see cref="DemoShowcase"/>) through a PredictionEngine.</summary>
    private static SavedModel SaveAndPredict(string outDir, AlignedModel model, DataPreparationResult prep, PromptTemplates templates,
        FeatureCache cache, MLContext ml)
    {
        Rule("Aligned model, ML.NET zero-shot zip, serving showcase (PredictionEngine on the reloaded zip)");
        string modelDir = Path.Combine(outDir, "aligned-model");
        model.Save(modelDir);
        var fm = prep.Labelled.First();
        var classes = ClassEmbeddingBuilder.Build(fm.ClassNames, templates, cache.Text, model);
        string zip = Path.Combine(outDir, $"zero-shot-{fm.Name}.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, model, classes, zip);
        var heldOut = PairsTsv.Read(prep.HeldOutTsv).Select(p => p with { Image = PairsTsv.ResolveImage(prep.HeldOutTsv, p) }).ToList();
        var picks = DemoShowcase.Choose(heldOut, fm.ClassNames, ImageFolderDataset.Load(fm.Folder), fm.Name);
        var rows = DemoShowcase.Predict(ml, zip, picks, fm.ClassNames, model, classes, cache.Image);
        int fromHeldOut = picks.Count(p => p.Origin.StartsWith("held-out", StringComparison.Ordinal));
        var summary = new ShowcaseSummary
        {
            Zip = Path.GetFileName(zip), Shown = rows.Count, Top1Correct = rows.Count(r => r.Correct), Top3Correct = rows.Count(r => r.InTop3),
            Rule = $"seed {DemoShowcase.Seed}: one held-out image per class whose caption starts by naming it ({fromHeldOut} of {fm.ClassNames.Count} classes have one), " +
                   $"then {picks.Count - fromHeldOut} random {fm.Name} images",
        };
        Console.WriteLine($"  showcase: {DemoShowcase.AccuracyLine(rows)}; {summary.Rule}");
        return new SavedModel(modelDir, zip, rows, summary);
    }

    /// <summary>The report of every stage's result (timings is filled in by the caller, total last).</summary>
    private static DemoReport BuildReport(DemoOptions o, FeatureCache cache, PreparedData data, EncodedData enc, Stage1Result stage1,
        TrainedSeeds trained, Dictionary<string, MethodScores> baselineScores, Dictionary<string, LinearProbeResult> probeResults,
        List<AblationRow>? ablation, SavedModel saved, Dictionary<string, double> timings)
    {
        var main = trained.Mean;
        return new DemoReport
        {
            Quick = o.Quick,
            Encoders = new() { ["image"] = $"{cache.Image.Identity.Name} ({cache.Image.Identity.Sha256[..12]})", ["text"] = $"{cache.Text.Identity.Name} ({cache.Text.Identity.Sha256[..12]})" },
            Data = new()
            {
                ["train_pairs"] = enc.Train.Count, ["heldout_pairs"] = enc.HeldOut.Count, ["heldout_images"] = enc.HeldOut.UniqueImagePaths.Count,
                ["proxy_images"] = enc.Proxy.Count, ["probe_train_per_set"] = data.ProbeTrain,
            },
            Recipe = DemoRecipes.Default.Description,
            Stage1 = stage1.ReportValues(),
            ZeroShot = main.ZeroShot, ZeroShotStandardized = main.ZeroShotStandardized, Retrieval = main.Retrieval, ProxyTop1 = main.ProxyTop1,
            Seeds = trained.SeedScores, Baselines = baselineScores, LinearProbe = probeResults, Ablation = ablation, Predictions = saved.Predictions, Showcase = saved.Showcase,
            Models = new() { ["aligned"] = saved.ModelDirectory, ["zero_shot_zip"] = saved.Zip },
            TimingsS = timings,
        };
    }

    internal static string Key(string labelledName) => labelledName switch
    {
        "fashion-mnist-test" => "fashion_mnist",
        "mnist-test" => "mnist",
        _ => labelledName.Replace('-', '_'),
    };

    private static int _step, _steps = 7;

    /// <summary>Prints the next step's heading, numbered "k/n" over the steps this run performs.</summary>
    private static void Rule(string title)
        => AnsiConsole.Write(new Rule($"[bold]{Markup.Escape($"{++_step}/{_steps} {title}")}[/]") { Justification = Justify.Left });
}
