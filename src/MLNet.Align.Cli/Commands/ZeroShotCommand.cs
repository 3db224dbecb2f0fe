using System.CommandLine;
using Microsoft.ML;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align zeroshot build --model DIR --classes FILE [--templates FILE|NAME] [--descriptions FILE]
/// [--renormalize] --out classifier.zip`: builds class embeddings from prompts and saves a self-contained ML.NET
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
        var build = new Command("build", "Build and save a zero-shot classifier zip.");
        foreach (var o in new Option[] { model, classes, templates, descriptions, renorm, output }) build.Options.Add(o);
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
            using var text = projector.OpenTextEncoder(); // recorded in the bundle
            {
                var names = ClassList.Load(parse.GetValue(classes)!);
                var tpl = PromptTemplates.LoadOrBuiltIn(parse.GetValue(templates)!);
                var desc = parse.GetValue(descriptions) is string d ? ClassDescriptions.Load(d) : null;
                int total = names.Count * tpl.Count;
                var emb = CliProgress.Run("Encoding class prompts", total, p => ClassEmbeddingBuilder.Build(names, tpl, text, projector, desc,
                    new ClassEmbeddingOptions { Renormalize = parse.GetValue(renorm), Progress = new Progress<int>(v => p.Report(v)) }));
                ZeroShotClassifierIO.BuildAndSave(new MLContext(0), projector, emb, parse.GetValue(output)!,
                    new ZeroShotClassifierEstimator.Options { ImageEncoder = zipEncoder });
                Console.WriteLine($"Saved {names.Count}-class zero-shot classifier to {parse.GetValue(output)}.");
            }
            return 0;
        }));
        var cmd = new Command("zeroshot", "Zero-shot classifiers from an aligned model and class prompts.");
        cmd.Subcommands.Add(build);
        cmd.Subcommands.Add(BuildEval(model));
        return cmd;
    }

    /// <summary>`zeroshot eval --model DIR --image-folder ROOT [--templates] [--out FILE.json]`: top-1/top-5 over an
    /// ImageFolder tree (one subfolder per class; class name = folder name with '_' as space, or classes.tsv).</summary>
    private static Command BuildEval(Option<string> model)
    {
        var folder = new Option<string>("--image-folder") { Description = "ROOT with one subfolder per class (ImageFolder convention).", Required = true };
        var templates = new Option<string>("--templates") { Description = "Template file or built-in set (simple-imagenet, openai-imagenet, photo, icons).", DefaultValueFactory = _ => "simple-imagenet" };
        var output = new Option<string?>("--out") { Description = "Write the result as JSON here." };
        var cache = new Option<string?>("--cache") { Description = "Embedding cache folder (default $MLNET_ALIGN_CACHE or ~/.cache/mlnet-align/embeddings)." };
        var eval = new Command("eval", "Zero-shot accuracy of an aligned model on an ImageFolder tree.") { model, folder, templates, output, cache };
        eval.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            using var projector = AlignedModel.Load(parse.GetValue(model)!);
            using var image = projector.OpenImageEncoder(); // recorded in the bundle
            using var text = projector.OpenTextEncoder();
            EmbeddingMatrix aligned;
            int[] labels;
            IReadOnlyList<string> classNames;
            if (projector.UsesImageTokens)
            {
                // Token projector: encode and project chunk by chunk (tokens are not cached).
                var ds = ImageFolderDataset.Load(parse.GetValue(folder)!);
                aligned = ProjectedFeatures.Images(projector, image, ds.Items.Select(i => i.Path).ToArray(), ct);
                labels = ds.Items.Select(i => i.Label).ToArray();
                classNames = ds.ClassNames;
            }
            else
            {
                using var features = new FeatureCache(parse.GetValue(cache), image, text) { Progress = CliProgress.Display, Log = CliProgress.Log };
                (var images, labels, classNames) = features.EncodeImageFolder(parse.GetValue(folder)!, ct);
                aligned = projector.ProjectImages(images);
            }
            if (aligned.Rows == 0)
                throw new InvalidDataException($"--image-folder '{parse.GetValue(folder)}' has {classNames.Count} class folder(s) but no images in them (or none could be decoded); nothing to evaluate.");
            var classes = ClassEmbeddingBuilder.Build(classNames, PromptTemplates.LoadOrBuiltIn(parse.GetValue(templates)!), text, projector);
            var result = MLNet.Align.Evaluation.ZeroShotEvaluator.Evaluate(aligned, classes.Matrix, labels, classNames);
            Console.WriteLine($"zero-shot top-1 {result.Top1:P2}, top-5 {result.Top5:P2}, mean per class {result.MeanPerClassAccuracy:P2}, n = {result.N}, {classNames.Count} classes");
            if (parse.GetValue(output) is string path)
            {
                var json = System.Text.Json.JsonSerializer.Serialize(new { top1 = result.Top1, top5 = result.Top5, n = result.N, mean_per_class = result.MeanPerClassAccuracy,
                    classes = classNames, per_class = result.PerClassAccuracy }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
                MLNet.Align.AtomicFile.WriteAllText(path, json);
            }
            return 0;
        })));
        return eval;
    }
}
