using System.CommandLine;
using Microsoft.ML;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using MLNet.Align.Embeddings;
using MLNet.Align.Prompts;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align zeroshot build --model DIR --classes FILE [--templates FILE|NAME] [--descriptions FILE]
/// [--prompts simple|wordnet] [--wordnet DIR] [--renormalize] --out classifier.zip`: builds class embeddings from prompts and saves a self-contained ML.NET
/// zero-shot classifier zip (image-only: no text encoder inside). Pooled and token-level (the paper's patch + CLS)
/// image projectors; the packaged ResNet-18 or the bundle's recorded ONNX image encoder.</summary>
public sealed class ZeroShotCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Aligned-model bundle directory (AlignedModel.Save).", Required = true };
        var classes = new Option<string>("--classes") { Description = "Class names, one per line.", Required = true };
        var templates = new Option<string>("--templates") { Description = "Template file (one per line with {}) or built-in set: openai-imagenet, simple-imagenet, photo, icons.", DefaultValueFactory = _ => "openai-imagenet" };
        var descriptions = new Option<string?>("--descriptions") { Description = "Optional per-class sentences (.json object of arrays, or TSV class<TAB>sentence)." };
        var renorm = new Option<bool>("--renormalize") { Description = "L2-normalise class vectors after averaging (open_clip); default off as in the paper." };
        var output = new Option<string>("--out") { Description = "Output classifier zip.", Required = true };
        var (prompts, wordnet) = PromptOptions();
        var build = new Command("build", "Build and save a zero-shot classifier zip.");
        foreach (var o in new Option[] { model, classes, templates, descriptions, prompts, wordnet, renorm, output }) build.Options.Add(o);
        build.SetAction(parse => CliErrors.Run(() =>
        {
            using var projector = AlignedModel.Load(parse.GetValue(model)!);
            // The zip's image chain: the packaged ResNet-18 as stock transforms, or the bundle's recorded ONNX encoder
            // (ViT, CNN...) rebuilt from its options in stock transforms (files checked against the recorded SHA-256).
            IMLNetImageEncoder? zipEncoder = null;
            if (projector.ImageEncoderSource is { Packaged: null, Image: { } io })
            {
                using (projector.OpenImageEncoder()) { } // throws when a recorded file moved or changed
                zipEncoder = new OnnxMLNetImageEncoder(io);
            }
            var names = ClassList.Load(parse.GetValue(classes)!);
            var tpl = PromptTemplates.LoadOrBuiltIn(parse.GetValue(templates)!);
            var desc = parse.GetValue(descriptions) is string d ? ClassDescriptions.Load(d) : null;
            if (desc is not null)
            {
                // Descriptions keyed by names that are not classes would be silently unused: none matching is an error,
                // some not matching a warning naming them.
                var unmatched = desc.CheckAgainst(names, $"--descriptions '{parse.GetValue(descriptions)}'");
                if (unmatched.Count > 0)
                    Console.Error.WriteLine($"warning: --descriptions: {unmatched.Count} described class(es) match no class of --classes and are unused: " +
                        string.Join(", ", unmatched.Take(10).Select(n => $"'{n}'")) + (unmatched.Count > 10 ? $", ... {unmatched.Count - 10} more" : "") + ".");
            }
            var promptSet = ResolvePrompts(parse.GetValue(prompts)!, parse.GetValue(wordnet)!, names);
            if (promptSet.WordNet is { } wn) desc = desc == null ? wn.Descriptions : PromptSets.Merge(desc, wn.Descriptions);
            bool renormalize = parse.GetValue(renorm);
            using var text = projector.OpenTextEncoder(); // recorded in the bundle
            {
                using var outLock = CliLocks.ForFile(parse.GetValue(output)!);
                int total = names.Sum(n => tpl.Count + (desc?.For(n).Count ?? 0));
                var emb = CliProgress.Run("Encoding class prompts", total, p => ClassEmbeddingBuilder.Build(names, tpl, text, projector, desc,
                    new ClassEmbeddingOptions { Renormalize = renormalize, Progress = new Progress<int>(v => p.Report(v)) }), unit: "prompts");
                ZeroShotClassifierIO.BuildAndSave(new MLContext(0), projector, emb, parse.GetValue(output)!,
                    new ZeroShotClassifierEstimator.Options { ImageEncoder = zipEncoder });
                Console.WriteLine($"Saved {names.Count}-class zero-shot classifier to {parse.GetValue(output)}.");
                Console.WriteLine(promptSet.Describe(tpl, renormalize));
            }
            return 0;
        }));
        var cmd = new Command("zeroshot", "Zero-shot classifiers from an aligned model and class prompts.");
        cmd.Subcommands.Add(build);
        cmd.Subcommands.Add(BuildEval(model));
        return cmd;
    }

    /// <summary>`zeroshot eval --model DIR --image-folder ROOT [--templates] [--prompts simple|wordnet] [--wordnet DIR]
    /// [--renormalize] [--out FILE.json]`: top-1/top-5 over an
    /// ImageFolder tree (one subfolder per class; class name = folder name with '_' as space, or classes.tsv).</summary>
    private static Command BuildEval(Option<string> model)
    {
        var folder = new Option<string?>("--image-folder") { Description = "ROOT with one subfolder per class (ImageFolder convention)." };
        var pairsOption = new Option<string?>("--pairs") { Description = "Instead of --image-folder: a pairs file with a label column (e.g. from `pairs from-folders`); each distinct image is classified among the labels." };
        var labelColumn = new Option<string>("--label-column") { Description = "The label column of --pairs.", DefaultValueFactory = _ => "label" };
        var templates = new Option<string>("--templates") { Description = "Template file or built-in set (simple-imagenet, openai-imagenet, photo, icons).", DefaultValueFactory = _ => "simple-imagenet" };
        var output = new Option<string?>("--out") { Description = "Write the result as JSON here." };
        var cache = new Option<string?>("--cache") { Description = "Embedding cache folder (default $MLNET_ALIGN_CACHE or ~/.cache/mlnet-align/embeddings, shared by every run; printed on stderr)." };
        var renorm = new Option<bool>("--renormalize") { Description = "L2-normalise class vectors after averaging (open_clip, CLIP_benchmark); default off: the mean of the normalised sentence embeddings, as in the paper." };
        var (prompts, wordnet) = PromptOptions();
        var eval = new Command("eval", "Zero-shot accuracy of an aligned model on an ImageFolder tree or a labelled pairs file.") { model, folder, pairsOption, labelColumn, templates, prompts, wordnet, renorm, output, cache };
        eval.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            string? folderPath = parse.GetValue(folder), pairsPath = parse.GetValue(pairsOption);
            if ((folderPath is null) == (pairsPath is null)) throw new ArgumentException("Give exactly one of --image-folder ROOT or --pairs FILE (with a label column).");
            if (pairsPath != null && !File.Exists(pairsPath)) throw new FileNotFoundException($"--pairs '{pairsPath}' does not exist.", pairsPath);
            var tpl = PromptTemplates.LoadOrBuiltIn(parse.GetValue(templates)!);
            string promptsName = CheckPrompts(parse.GetValue(prompts)!);
            // A missing dictionary fails before any encoding.
            var dictionary = promptsName == "wordnet" ? new WordNetGlosses(parse.GetValue(wordnet)!) : null;
            bool renormalize = parse.GetValue(renorm);
            using var projector = AlignedModel.Load(parse.GetValue(model)!);
            // Listed once up front: what the walk skipped (pipes, devices, link loops) is reported, never read.
            var listing = folderPath is null ? null : ImageFolderDataset.Load(folderPath);
            if (listing != null)
            {
                foreach (var (skippedPath, why) in listing.Skipped.Take(20))
                    Console.Error.WriteLine($"warning: --image-folder: skipped '{skippedPath}': {why}.");
                if (listing.Skipped.Count > 20) Console.Error.WriteLine($"warning: --image-folder: {listing.Skipped.Count - 20} more entries skipped.");
            }
            using var image = projector.OpenImageEncoder(); // recorded in the bundle
            using var text = projector.OpenTextEncoder();
            EmbeddingMatrix aligned;
            int[] labels;
            IReadOnlyList<string> classNames;
            if (pairsPath != null)
                (aligned, labels, classNames) = LabelledPairs(projector, image, text, pairsPath, parse.GetValue(labelColumn)!, parse.GetValue(cache), ct);
            else if (projector.UsesImageTokens)
            {
                // Token projector: encode and project chunk by chunk (tokens are not cached).
                var ds = listing!;
                aligned = ProjectedFeatures.Images(projector, image, ds.Items.Select(i => i.Path).ToArray(), ct);
                labels = ds.Items.Select(i => i.Label).ToArray();
                classNames = ds.ClassNames;
            }
            else
            {
                using var features = new FeatureCache(parse.GetValue(cache), image, text) { Progress = CliProgress.Display, Log = CliProgress.Log };
                CliCache.Announce(parse.GetValue(cache), features.Root);
                (var images, labels, classNames) = features.EncodeImageFolder(parse.GetValue(folder)!, ct);
                aligned = projector.ProjectImages(images);
            }
            if (aligned.Rows == 0)
                throw new InvalidDataException(pairsPath != null ? $"--pairs '{pairsPath}' gave no image that could be decoded; nothing to evaluate."
                    : $"--image-folder '{folderPath}' has {classNames.Count} class folder(s) but no images in them (or none could be decoded); nothing to evaluate.");
            var promptSet = new PromptChoice(promptsName, dictionary is null ? null : PromptSets.WordNetLookup(classNames, dictionary));
            var classes = ClassEmbeddingBuilder.Build(classNames, tpl, text, projector, promptSet.WordNet?.Descriptions,
                new ClassEmbeddingOptions { Renormalize = renormalize, CancellationToken = ct });
            var result = MLNet.Align.Evaluation.ZeroShotEvaluator.Evaluate(aligned, classes.Matrix, labels, classNames);
            Console.WriteLine($"zero-shot top-1 {result.Top1:P2}, top-5 {result.Top5:P2}, mean per class {result.MeanPerClassAccuracy:P2}, n = {result.N}, {classNames.Count} classes");
            Console.WriteLine(promptSet.Describe(tpl, renormalize));
            if (parse.GetValue(output) is string path)
            {
                var json = System.Text.Json.JsonSerializer.Serialize(new { top1 = result.Top1, top5 = result.Top5, n = result.N, mean_per_class = result.MeanPerClassAccuracy,
                    classes = classNames, per_class = result.PerClassAccuracy,
                    prompts = promptSet.Name, templates = tpl.Name, class_vectors = ClassVectorConvention(renormalize),
                    sentences_per_class = classes.SentenceCounts,
                    glossed_classes = promptSet.WordNet?.Matches.Where(m => m != null).Select(m => new { @class = m!.ClassName, lemma = m.Lemma, synset_offset = m.SynsetOffset, senses = m.SenseCount, gloss = m.Gloss }).ToArray(),
                    unglossed_classes = promptSet.WordNet?.NotFound },
                    new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
                using var outLock = CliLocks.ForFile(path);
                MLNet.Align.AtomicFile.WriteAllText(path, json);
            }
            return 0;
        })));
        return eval;
    }

    /// <summary>Each distinct image of a labelled pairs file (its first row's label), projected; classes = the labels, sorted.</summary>
    /// <exception cref="InvalidDataException">No label column, an empty label (row named), an image with two labels, or fewer than 2 classes.</exception>
    internal static (EmbeddingMatrix Aligned, int[] Labels, IReadOnlyList<string> ClassNames) LabelledPairs(AlignedModel projector, IImageEncoder image,
        ITextEncoder text, string pairsPath, string labelColumn, string? cacheRoot, CancellationToken ct)
    {
        var file = PairsFile.Read(pairsPath);
        if (!file.HasColumn(labelColumn))
            throw new InvalidDataException($"--pairs '{pairsPath}' has no '{labelColumn}' column (columns: {string.Join(", ", file.Header)}); zero-shot needs a label per image.");
        var labelOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var row in file.Rows)
        {
            var label = file.GetExtra(row, labelColumn).Trim();
            if (label.Length == 0) throw new InvalidDataException($"--pairs '{pairsPath}' line {row.Line}: the '{labelColumn}' column is empty.");
            if (labelOf.TryGetValue(Path.GetFullPath(row.ImagePath), out var other) && other != label)
                throw new InvalidDataException($"--pairs '{pairsPath}' line {row.Line}: image '{row.RawImagePath}' is labelled '{label}' here and '{other}' on an earlier line.");
            labelOf[Path.GetFullPath(row.ImagePath)] = label;
        }
        var classNames = labelOf.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (classNames.Length < 2) throw new InvalidDataException($"--pairs '{pairsPath}' has {classNames.Length} distinct label(s); zero-shot needs at least 2 classes.");
        var index = classNames.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
        var paths = labelOf.Keys.ToArray();
        EmbeddingMatrix aligned;
        if (projector.UsesImageTokens) aligned = ProjectedFeatures.Images(projector, image, paths, ct);
        else
        {
            // The pairs' store (captions encoded too, which a re-run of retrieval or train reuses from the cache).
            using var features = new FeatureCache(cacheRoot, image, text) { Progress = CliProgress.Display, Log = CliProgress.Log };
            var stored = features.EncodePairs(pairsPath, ct).LoadPooled(ct);
            // One row per distinct image (a pairs file repeats an image for each of its captions); skipped images are absent.
            var first = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int r = 0; r < stored.Count; r++) first.TryAdd(Path.GetFullPath(stored.ImagePaths[r]), r);
            paths = first.Keys.ToArray();
            aligned = projector.ProjectImages(stored.Image.SelectRows(first.Values.ToArray()));
        }
        return (aligned, paths.Select(p => index[labelOf[p]]).ToArray(), classNames);
    }

    /// <summary>The prompt-set options shared by build and eval.</summary>
    private static (Option<string> Prompts, Option<string> WordNet) PromptOptions() =>
    (
        new Option<string>("--prompts") { Description = "Prompt set: 'simple' (the --templates set alone) or 'wordnet' (the --templates set plus sentences from each class's WordNet gloss, for the classes found: most frequent noun sense).", DefaultValueFactory = _ => "simple" },
        new Option<string>("--wordnet") { Description = "WordNet 3.0 dictionary folder with index.noun and data.noun (Debian package wordnet-base).", DefaultValueFactory = _ => "/usr/share/wordnet" }
    );

    /// <summary>Validates a --prompts value (case-insensitive) and returns it lowercased.</summary>
    /// <exception cref="ArgumentException">Not 'simple' or 'wordnet'.</exception>
    private static string CheckPrompts(string value)
    {
        string v = value.Trim().ToLowerInvariant();
        return v is "simple" or "wordnet" ? v : throw new ArgumentException($"--prompts '{value}' is not a prompt set; expected 'simple' or 'wordnet'.");
    }

    private static PromptChoice ResolvePrompts(string prompts, string wordnetDir, IReadOnlyList<string> classNames) =>
        CheckPrompts(prompts) == "wordnet" ? new PromptChoice("wordnet", PromptSets.WordNetLookup(classNames, wordnetDir)) : new PromptChoice("simple", null);

    private static string ClassVectorConvention(bool renormalize) => renormalize
        ? "renormalized mean (open_clip, CLIP_benchmark)"
        : "mean of normalised sentence embeddings, not renormalized (Freeze-Align)";

    private sealed record PromptChoice(string Name, WordNetDescriptions? WordNet)
    {
        public string Describe(PromptTemplates templates, bool renormalize)
        {
            string s = $"prompts: {Name} (templates {templates.Name}, {templates.Count}";
            if (WordNet is { } wn)
            {
                s += $" + {PromptSets.GlossTemplates.Count} WordNet gloss sentences for {wn.Glossed.Count}/{wn.ClassNames.Count} classes: " +
                     string.Join(", ", wn.Matches.Where(m => m != null).Select(m => m!.Lemma == WordNetGlosses.ToLemma(m.ClassName) ? m.ClassName : $"{m.ClassName} (as {m.Lemma})"));
                if (wn.NotFound.Count > 0) s += $"; no gloss: {string.Join(", ", wn.NotFound)}";
            }
            return s + $"); class vectors: {ClassVectorConvention(renormalize)}";
        }
    }
}
