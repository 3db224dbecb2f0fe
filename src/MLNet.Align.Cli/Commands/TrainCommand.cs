using MLNet.Align.Evaluation;
using System.CommandLine;
using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using MLNet.Align.Charts;
using MLNet.Align.Recipes;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// `mlnet-align train`: trains the projectors on cached embeddings and writes the aligned-model bundle
/// (AlignedModel.Save), training.json (history) and training.png (loss and validation R@1 curves) into --out.
/// Checkpoints go to OUT/checkpoints; --resume continues from there after a kill or Ctrl+C.
/// </summary>
public sealed class TrainCommand : ICliCommand
{
    public Command Build()
    {
        var store = new Option<string?>("--store") { Description = "Embedding store directory (from `mlnet-align embed`)." };
        var pairs = new Option<string?>("--pairs") { Description = "Pairs file (image path, caption) to encode first." };
        var output = new Option<string>("--out") { Description = "Output directory for the bundle, training.json and training.png.", Required = true };
        var epochs = new Option<int?>("--epochs") { Description = "Epochs (default from --config, else 10)." };
        var batch = new Option<int?>("--batch-size") { Description = "Pairs per step (default 256)." };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default 1e-3)." };
        var config = new Option<string?>("--config") { Description = "AlignmentOptions JSON file (projector + training settings)." };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT/checkpoints if a checkpoint exists." };
        var device = new Option<string>("--device") { Description = "TorchSharp device: cpu | cuda | cuda:N (cuda needs a -p:TorchCuda=true build and a GPU). Not saved.", DefaultValueFactory = _ => "cpu" };
        var initFrom = new Option<string?>("--init-from") { Description = "Existing bundle (OUT/model of an earlier train) whose weights seed the new model: the --freeze side, or every matching piece without --freeze." };
        var freeze = new Option<string>("--freeze") { Description = "none | image | text: keep that side's projector fixed (with --init-from: swap the other encoder and retrain only its side).", DefaultValueFactory = _ => "none" };
        var projector = new Option<string?>("--projector") { Description = "pooled (MLP on pooled features, needs no tokens) | paper (the paper's token projectors, docs/method.md 3.3: needs a store embedded with --tokens). Default from --config, else pooled." };
        var dim = new Option<int?>("--embedding-dim") { Description = "Width of the shared space (default from --config; paper 1024, pooled 512)." };
        var recipe = new Option<string?>("--recipe") { Description = $"{string.Join(" | ", RecipeCatalog.Names)} (docs/recipes.md). Default auto: fit every recipe and keep the best on validation data; a trained recipe configured by --config, --projector, --embedding-dim, --resume, --init-from or --freeze when one of those is given." };
        var validation = new Option<string?>("--validation") { Description = "Validation data that chooses the recipe and the epoch: a pairs file (image, caption[, label]) or a labelled folder tree, from the domain the model will serve. Default: 10% of the pairs held out (whole groups)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the validation split and of every recipe.", DefaultValueFactory = _ => 42 };
        var encoders = new EncoderCliOptions();
        var cmd = new Command("train", "Fit an alignment (closed-form maps, ASIF or trained projectors, frozen encoders) on cached embeddings; by default every recipe, keeping the best.");
        foreach (var o in new Option[] { store, pairs, output, recipe, validation, seed, epochs, batch, lr, config, projector, dim, resume, device, initFrom, freeze }) cmd.Options.Add(o);
        encoders.AddTo(cmd); // used with --pairs (a store records its encoders)
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            string? storeDir = parse.GetValue(store), pairsFile = parse.GetValue(pairs);
            if ((storeDir is null) == (pairsFile is null)) throw new ArgumentException("Give exactly one of --store DIR or --pairs FILE.");
            var outDir = parse.GetValue(output)!;
            // The flags that configure one trained run keep train's earlier meaning; otherwise recipes, auto by default.
            bool configured = parse.GetValue(config) is not null || parse.GetValue(projector) is not null || parse.GetValue(dim) is not null
                || parse.GetValue(resume) || parse.GetValue(initFrom) is not null || parse.GetValue(freeze) != "none";
            string? recipeName = parse.GetValue(recipe);
            if (recipeName != null && configured)
                throw new ArgumentException("--recipe cannot be combined with --config, --projector, --embedding-dim, --resume, --init-from or --freeze (they configure one trained run); give one or the other.");
            if (!configured) recipeName ??= RecipeCatalog.Auto;
            if (recipeName != null && !recipeName.Equals(RecipeCatalog.Auto, StringComparison.OrdinalIgnoreCase)) RecipeCatalog.Get(recipeName); // an unknown name lists the known ones
            if (recipeName is null && parse.GetValue(validation) is not null)
                throw new ArgumentException("--validation chooses among recipes; it needs --recipe (not --config/--projector/--resume...).");
            // Everything that can be checked without encoding is checked first: options, config, inputs, --out.
            var options = ResolveOptions(parse.GetValue(config), parse.GetValue(epochs), parse.GetValue(batch), parse.GetValue(lr));
            if (parse.GetValue(projector) is not null || parse.GetValue(dim) is not null)
            {
                int? e = parse.GetValue(dim);
                options = options with
                {
                    Projector = (parse.GetValue(projector)?.ToLowerInvariant()) switch
                    {
                        null => options.Projector with { EmbeddingDimension = e ?? options.Projector.EmbeddingDimension },
                        "paper" => ProjectorOptions.Paper(e ?? 1024),
                        "pooled" or "pooled-mlp" => ProjectorOptions.PooledMlp(e ?? 512),
                        var other => throw new ArgumentException($"--projector must be pooled or paper, got '{other}'."),
                    },
                };
            }
            if (File.Exists(outDir)) throw new ArgumentException($"--out '{outDir}' is a file; give a folder.");
            if (storeDir != null && !Directory.Exists(storeDir)) throw new DirectoryNotFoundException($"Embedding store '{storeDir}' does not exist (write one with `mlnet-align embed`).");
            if (pairsFile != null && !File.Exists(pairsFile)) throw new FileNotFoundException($"Pairs file '{pairsFile}' does not exist.", pairsFile);
            bool resumeRequested = parse.GetValue(resume);
            options = options with
            {
                Training = options.Training with
                {
                    Device = parse.GetValue(device)!,
                    Freeze = parse.GetValue(freeze)!.ToLowerInvariant() switch
                    {
                        "none" => ProjectorSide.None,
                        "image" => ProjectorSide.Image,
                        "text" => ProjectorSide.Text,
                        var f => throw new ArgumentException($"--freeze must be none, image or text, got '{f}'."),
                    },
                },
            };
            try { options.Validate(); }
            catch (ArgumentException e) when (parse.GetValue(dim) is not null && e.Message.StartsWith("EmbeddingDimension must", StringComparison.Ordinal))
            {
                throw new ArgumentException("--embedding-dim" + e.Message["EmbeddingDimension".Length..]);
            }
            AlignmentTrainer.ResolveDevice(options.Training.Device); // fail before any encoding when CUDA is missing
            var initDir = parse.GetValue(initFrom);
            if (initDir != null && !Directory.Exists(initDir)) throw new DirectoryNotFoundException($"--init-from '{initDir}' does not exist (give the model folder of an earlier train).");
            using var init = initDir is not null ? AlignedModel.Load(initDir) : null;
            if (init is null && options.Training.Freeze != ProjectorSide.None)
                Console.Error.WriteLine($"warning: --freeze {options.Training.Freeze} without --init-from keeps that side at its random initialisation.");
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            bool createdOut = !Directory.Exists(outDir);
            try
            {
                // --pairs encodes into the per-key cache first (a re-run does no encoder work).
                // --pairs: encode tokens only when the one recipe asked for needs them.
                var encodeFor = recipeName != null && !recipeName.Equals(RecipeCatalog.Auto, StringComparison.OrdinalIgnoreCase) && RecipeCatalog.Get(recipeName) is TrainedRecipe tr
                    ? tr.Projector : options.Projector;
                var storeSource = storeDir != null ? new EmbeddingStoreDataSource(storeDir) : new EmbeddingStoreDataSource(EncodePairs(pairsFile!, encoders.Read(parse), encodeFor, cts.Token));
                IAlignmentDataSource data = storeSource;
                if (recipeName != null)
                {
                    int? e = parse.GetValue(epochs), b = parse.GetValue(batch);
                    double? l = parse.GetValue(lr);
                    TrainRecipes.Run(storeSource, outDir, recipeName, parse.GetValue(validation),
                        t => t with { Epochs = e ?? t.Epochs, BatchSize = b ?? t.BatchSize, LearningRate = l ?? t.LearningRate, Device = options.Training.Device },
                        parse.GetValue(seed), cts.Token);
                    Console.WriteLine($"Wrote {outDir} (recipe {recipeName}; the bundle is {Path.Combine(outDir, "model")}).");
                    return 0;
                }
                CheckEnoughRows(data, options.Training);
                var history = Train(data, outDir, options, resumeRequested, cts.Token, init);
                string best = history.BestEpoch is int be ? (be < 0 ? "initial model" : (be + 1).ToString()) : "-";
                Console.WriteLine($"Wrote {outDir} ({history.Steps.Count} steps, stop: {history.StopReason}, best epoch {best} of {options.Training.Epochs}, 1-based).");
                return 0;
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("Cancelled; the last complete checkpoint is kept. Rerun with --resume to continue.");
                return 130;
            }
            catch
            {
                // A refusal before any output leaves no empty --out folder behind.
                if (createdOut) RemoveIfEmpty(outDir);
                throw;
            }
            finally { Console.CancelKeyPress -= onCancel; }
        }));
        return cmd;
    }

    /// <summary>--config (if any) with the command-line overrides, validated.</summary>
    /// <exception cref="FileNotFoundException">--config does not exist.</exception>
    /// <exception cref="InvalidDataException">--config is not valid AlignmentOptions JSON (the message names the file, line and position).</exception>
    /// <exception cref="ArgumentException">An option value is out of range (e.g. --epochs 0, negative --lr, --batch-size 1).</exception>
    internal static AlignmentOptions ResolveOptions(string? configPath, int? epochs, int? batchSize, double? learningRate)
    {
        AlignmentOptions options;
        if (configPath is null) options = new AlignmentOptions();
        else
        {
            if (!File.Exists(configPath)) throw new FileNotFoundException($"--config '{configPath}' does not exist.", configPath);
            try { options = AlignmentOptions.FromJson(File.ReadAllText(configPath)); }
            catch (System.Text.Json.JsonException e)
            {
                // Syntax errors carry a position; an unknown key's message names the key and the known ones instead.
                string at = e.LineNumber is long line ? $" (line {line + 1}, byte {(e.BytePositionInLine ?? -1) + 1})" : "";
                throw new InvalidDataException($"--config '{configPath}' is not valid AlignmentOptions JSON{at}: {e.Message}", e);
            }
        }
        var t = options.Training;
        options = options with
        {
            Training = t with { Epochs = epochs ?? t.Epochs, BatchSize = batchSize ?? t.BatchSize, LearningRate = learningRate ?? t.LearningRate },
        };
        try { options.Validate(); }
        catch (ArgumentException e)
        {
            // Name the command-line option the user typed rather than the property (only where they typed it).
            string message = e.Message;
            foreach (var (property, flag, given) in new[] { ("Epochs", "--epochs", epochs is not null), ("BatchSize", "--batch-size", batchSize is not null), ("LearningRate", "--lr", learningRate is not null) })
                if (given && message.StartsWith(property + " must", StringComparison.Ordinal)) message = flag + message[property.Length..];
            throw new ArgumentException(configPath is null || message.StartsWith("--", StringComparison.Ordinal) ? message : $"--config '{configPath}': {message}");
        }
        return options;
    }

    /// <summary>Refuses a store too small to train and validate on, before anything is written.</summary>
    internal static void CheckEnoughRows(IAlignmentDataSource data, AlignmentTrainingOptions t)
    {
        long val = t.ValidationFraction > 0 ? Math.Min(t.MaxValidationRows, Math.Max(2, (long)Math.Round(data.Count * t.ValidationFraction))) : 0;
        if (data.Count - val < 2)
            throw new InvalidDataException($"The data has {data.Count} pair(s); training needs at least {val + 2} ({val} held out for validation + 2 to train on).");
    }

    private static void RemoveIfEmpty(string dir)
    {
        try { if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Trains on <paramref name="data"/> with a progress bar and writes OUT/bundle files, OUT/training.json
    /// and OUT/training.png. Checkpoints live in OUT/checkpoints (unless the options name another directory).</summary>
    /// <param name="initFrom">Optional model seeding the weights (<see cref="AlignmentTrainer.InitFrom"/>).</param>
    public static TrainingHistory Train(IAlignmentDataSource data, string outDir, AlignmentOptions options, bool resume, CancellationToken cancellationToken,
        AlignedModel? initFrom = null)
    {
        options.Training.Validate();
        Directory.CreateDirectory(outDir);
        using var outLock = CliLocks.Folder(outDir); // one writer per --out: a second run fails at once naming this one
        var checkpoints = options.Training.CheckpointDirectory ?? Path.Combine(outDir, "checkpoints");
        options = options with { Training = options.Training with { CheckpointDirectory = checkpoints } };
        var t = options.Training;
        var result = CliProgress.Run($"train {options.Projector.ImageLocal}/{options.Projector.ImageGlobal}/{options.Projector.TextLocal}/{options.Projector.TextGlobal}",
            AlignmentTrainer.TotalSteps(data.Count, t), progress =>
            {
                var manifest = (data as EmbeddingStoreDataSource)?.Store.Manifest;
                var trainer = new AlignmentTrainer(options)
                {
                    // The bundle records the encoders (with their complete options) so that eval commands reopen them.
                    ImageEncoder = manifest?.ImageEncoder, TextEncoder = manifest?.TextEncoder,
                    ImageEncoderSource = manifest?.ImageEncoderSource, TextEncoderSource = manifest?.TextEncoderSource,
                    Progress = new Reporter(p => progress.Report(p.Step)),
                    Log = line => Console.Error.WriteLine(line),
                    InitFrom = initFrom,
                };
                return resume && AlignmentTrainer.HasCheckpoint(checkpoints) ? trainer.Resume(data, null, cancellationToken) : trainer.Fit(data, null, cancellationToken);
            }, unit: "steps", atMost: t.Patience is not null);
        using var model = result.Model;
        model.Save(Path.Combine(outDir, "model"));
        AtomicFile.WriteAllText(Path.Combine(outDir, "training.json"), result.History.ToJson());
        TrainingCharts.Write(result.History, Path.Combine(outDir, "training.png")); // the renderer writes atomically
        return result.History;
    }

    private static EmbeddingStore EncodePairs(string pairsFile, EncoderArgs encoders, ProjectorOptions projector, CancellationToken ct)
    {
        using var image = encoders.CreateImageEncoder(32);
        using var text = encoders.CreateTextEncoder(32);
        using var cache = new FeatureCache(null, image, text)
        {
            Progress = CliProgress.Display, Log = CliProgress.Log,
            Options = new EmbeddingPipelineOptions { DType = EmbeddingDType.Float16, ImageTokens = projector.UsesImageTokens, TextTokens = projector.UsesTextTokens },
        };
        CliCache.Announce(null, cache.Root, hasOption: false);
        return cache.EncodePairs(pairsFile, ct);
    }

    /// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    internal sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
