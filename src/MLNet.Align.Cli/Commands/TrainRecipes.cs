using System.Globalization;
using MLNet.Align.Charts;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Recipes;
using Spectre.Console;
using MLNet.Align.Prompts;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`train --recipe NAME|auto`: fits one recipe, or every candidate with the best kept on validation data,
/// and writes the bundle, training.json (the candidate table and why the winner won) and a chart.</summary>
internal static class TrainRecipes
{
    /// <summary>Runs <paramref name="recipeName"/> on the store and writes OUT/model, OUT/training.json, OUT/recipes.png
    /// (auto) or OUT/training.png (one trained recipe).</summary>
    public static void Run(EmbeddingStoreDataSource data, string outDir, string recipeName, string? validationPath,
        Func<AlignmentTrainingOptions, AlignmentTrainingOptions> overrides, int seed, CancellationToken ct)
    {
        var manifest = data.Store.Manifest;
        bool auto = string.Equals(recipeName, RecipeCatalog.Auto, StringComparison.OrdinalIgnoreCase);
        var single = auto ? null : RecipeCatalog.Get(recipeName);
        if (single is { NeedsTokens: true } && (data.ImageTokenDimension is null || data.TextTokenDimension is null))
            throw new ArgumentException($"Recipe '{single.Name}' needs token features: embed the pairs with --tokens.");
        ValidationSet? external = validationPath is null ? null : ExternalValidation(validationPath, data, outDir, ct);
        var labels = data.Labels();
        using var text = labels != null ? OpenText(manifest) : null;
        var options = new RecipeSelectionOptions
        {
            Candidates = auto ? null : [single!], Validation = external, Seed = seed, Labels = labels,
            EncodePrompts = text is null ? null : prompts => text.EncodeBatch(prompts, cancellationToken: ct).Pooled,
        };
        Directory.CreateDirectory(outDir);
        // Trained candidates report their own steps; the bar adds them up (early stopping ends a candidate sooner,
        // so the total is an upper bound).
        var candidates = (options.Candidates ?? RecipeCatalog.AutoCandidates(data.ImageTokenDimension != null && data.TextTokenDimension != null))
            .OfType<TrainedRecipe>().ToList();
        long rows = data.Count - (external is null ? Math.Min(5000, (long)Math.Round(data.Count * 0.1)) : 0);
        long total = candidates.Sum(r => AlignmentTrainer.StepsPerEpoch(rows, overrides(r.Training)) * overrides(r.Training).Epochs);
        var selection = CliProgress.Run($"{(auto ? "auto: fitting every recipe" : "fitting " + single!.Name)}, training steps (at most)", total, bar =>
        {
            long done = 0, last = 0;
            return RecipeSelector.Select(data, options, c => new RecipeContext(c.Data, c.TrainRows, c.HeldOutRows, c.Validation)
            {
                Seed = seed, ImageEncoder = manifest.ImageEncoder, TextEncoder = manifest.TextEncoder,
                ImageEncoderSource = manifest.ImageEncoderSource, TextEncoderSource = manifest.TextEncoderSource,
                Log = line => Console.Error.WriteLine(line), CancellationToken = ct, TrainingOverrides = overrides,
                Progress = new TrainCommand.Reporter(p =>
                {
                    if (p.Step < last) done += last; // a new candidate started
                    last = p.Step;
                    bar.Report(done + p.Step);
                }),
            });
        });
        using (selection)
        {
            selection.Model.Save(Path.Combine(outDir, "model"));
            AtomicFile.WriteAllText(Path.Combine(outDir, "training.json"), selection.ToJson());
            if (selection.History != null) TrainingCharts.Write(selection.History, Path.Combine(outDir, "training.png"));
            if (auto) Chart(selection, Path.Combine(outDir, "recipes.png"));
            Print(selection);
        }
    }

    private static ITextEncoder OpenText(EmbeddingStoreManifest m)
        => m.TextEncoderSource is { } s ? s.OpenText("the store manifest") : PackagedEncoders.OpenTextEncoder(m.TextEncoder);

    /// <summary>--validation: a pairs file (image, caption[, label]) or a labelled folder tree (captions made from the
    /// class names with the simple-imagenet templates), encoded with the store's encoders.</summary>
    private static ValidationSet ExternalValidation(string path, EmbeddingStoreDataSource data, string outDir, CancellationToken ct)
    {
        string pairsPath = path;
        if (Directory.Exists(path))
        {
            var ds = ImageFolderDataset.Load(path);
            if (ds.Count == 0) throw new InvalidDataException($"--validation folder '{path}' holds no images.");
            pairsPath = Path.Combine(outDir, "validation-pairs.tsv");
            Directory.CreateDirectory(outDir);
            LabelledFolderPairs.WriteTsv(pairsPath, LabelledFolderPairs.Build(ds, MLNet.Align.Prompts.PromptTemplates.SimpleImageNet));
        }
        else if (!File.Exists(path)) throw new FileNotFoundException($"--validation '{path}' is neither a pairs file nor a folder.", path);
        var m = data.Store.Manifest;
        using var image = m.ImageEncoderSource is { } si ? si.OpenImage("the store manifest") : PackagedEncoders.OpenImageEncoder(m.ImageEncoder);
        using var text = OpenText(m);
        using var cache = new FeatureCache(null, image, text) { Progress = CliProgress.Display, Log = CliProgress.Log };
        var stored = cache.EncodePairs(pairsPath, ct).LoadPooled(ct);
        if (stored.Count < 2) throw new InvalidDataException($"--validation '{path}' gave {stored.Count} usable pair(s); at least 2 are needed.");
        var groups = PairGroups.FromImagesAndCaptions(stored.ImagePaths, stored.Captions);
        var set = new ValidationSet
        {
            Image = stored.Image, Text = stored.Text!, Groups = groups,
            Description = $"--validation {path}: {stored.Count} pairs from outside the training data",
        };
        if (stored.Store.Manifest.Input.ExtraColumns.Contains("label"))
        {
            var templates = MLNet.Align.Prompts.PromptTemplates.SimpleImageNet;
            set = set.WithLabels(stored.Column("label"), templates, p => text.EncodeBatch(p, cancellationToken: ct).Pooled);
        }
        return set;
    }

    private static string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);

    private static void Print(RecipeSelection s)
    {
        bool zs = s.Candidates.Any(c => c.Scores?.ZeroShotTop1 != null);
        var t = new Table().Title(Markup.Escape($"Recipes on {s.Validation}"));
        t.AddColumns("recipe", "kind", "i2t R@1/5/10", "t2i R@1/5/10");
        if (zs) t.AddColumn("zero-shot top-1");
        t.AddColumns("score", "kept", "seconds");
        foreach (var c in s.Candidates)
        {
            var v = c.Scores;
            var row = new List<string>
            {
                (c.Recipe == s.Winner ? "* " : "") + c.Recipe, c.Kind.ToString(),
                v is null ? "failed" : string.Join(" / ", v.ImageToText.Select(F)), v is null ? Markup.Escape(c.Error ?? "") : string.Join(" / ", v.TextToImage.Select(F)),
            };
            if (zs) row.Add(v?.ZeroShotTop1 is double z ? F(z) : "");
            row.AddRange([v is null ? "" : F(v.Score), Markup.Escape(c.Kept ?? ""), c.Seconds.ToString("F1", CultureInfo.InvariantCulture)]);
            t.AddRow(row.Select(x => x.StartsWith('*') ? $"[bold]{Markup.Escape(x)}[/]" : x).ToArray());
        }
        AnsiConsole.Write(t);
        foreach (var w in s.Candidates.FirstOrDefault(c => c.Scores != null)?.Scores!.Warnings ?? []) Console.Error.WriteLine("warning: " + w);
        Console.WriteLine($"Chose {s.Winner}: {s.Reason}");
    }

    private static void Chart(RecipeSelection s, string path)
    {
        var ok = s.Candidates.Where(c => c.Scores != null).ToList();
        bool zs = ok.Any(c => c.Scores!.ZeroShotTop1 != null);
        var series = new List<string> { "image->text R@1", "text->image R@1" };
        if (zs) series.Add("zero-shot top-1");
        Plots.Render(new PlotSpec
        {
            Kind = "bars", Path = path, Title = "Validation figures of every recipe (the chosen one first in the legend order of the table)",
            YLabel = "percent", Width = 900, Height = 500, Groups = ok.Select(c => c.Recipe == s.Winner ? c.Recipe + " (chosen)" : c.Recipe).ToArray(),
            Series = series.ToArray(),
            SeriesValues = series.Select((_, k) => ok.Select(c => k switch
            {
                0 => c.Scores!.ImageToText[0], 1 => c.Scores!.TextToImage[0], _ => c.Scores!.ZeroShotTop1 ?? 0,
            }).ToArray()).ToArray(),
        });
    }
}
