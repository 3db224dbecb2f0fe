using System.CommandLine;
using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align retrieval eval --model DIR --pairs FILE [--out FILE.json]`: Recall@1/5/10 image->text and
/// text->image of an aligned model on a pairs file (an image's caption set counts as its positives).</summary>
public sealed class RetrievalCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Aligned-model bundle directory.", Required = true };
        var pairs = new Option<string>("--pairs") { Description = "Pairs file (TSV/CSV with image and caption columns).", Required = true };
        var output = new Option<string?>("--out") { Description = "Write the result as JSON here." };
        var cache = new Option<string?>("--cache") { Description = "Embedding cache folder (default $MLNET_ALIGN_CACHE or ~/.cache/mlnet-align/embeddings, shared by every run; printed on stderr)." };
        var eval = new Command("eval", "Recall@K of an aligned model on a pairs file.") { model, pairs, output, cache };
        eval.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            using var projector = AlignedModel.Load(parse.GetValue(model)!);
            // The bundle records the encoders (complete options, paths, SHA-256): no encoder flags here.
            using var image = projector.OpenImageEncoder();
            using var text = projector.OpenTextEncoder();
            RetrievalResult result;
            if (projector.UsesImageTokens || projector.UsesTextTokens)
            {
                // Token projectors: encode and project chunk by chunk (tokens are not cached).
                var file = PairsFile.Read(parse.GetValue(pairs)!);
                var captions = file.Rows.Select(r => r.Caption ?? "").ToArray();
                var images = ProjectedFeatures.Images(projector, image, file.Images, ct);
                var texts = ProjectedFeatures.Texts(projector, text, captions, ct);
                result = RetrievalEvaluator.Evaluate(images, texts, file.Rows.Select(r => r.ImageId).ToArray());
            }
            else
            {
                using var features = new FeatureCache(parse.GetValue(cache), image, text) { Progress = CliProgress.Display, Log = CliProgress.Log };
                CliCache.Announce(parse.GetValue(cache), features.Root);
                var stored = features.EncodePairs(parse.GetValue(pairs)!, ct).LoadPooled(ct);
                // ImageIds[row] is already the index of the row's image in UniqueImageRows.
                result = ProjectorEvaluation.Retrieval(projector, stored.UniqueImageEmbeddings(), stored.Text!, stored.ImageIds);
            }
            Console.WriteLine($"n = {result.N} images, {result.Captions} captions");
            Console.WriteLine($"image->text R@1 {result.ImageToText.R1:P2}  R@5 {result.ImageToText.R5:P2}  R@10 {result.ImageToText.R10:P2}");
            Console.WriteLine($"text->image R@1 {result.TextToImage.R1:P2}  R@5 {result.TextToImage.R5:P2}  R@10 {result.TextToImage.R10:P2}");
            if (parse.GetValue(output) is string path)
            {
                using var outLock = CliLocks.ForFile(path);
                MLNet.Align.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        })));
        var cmd = new Command("retrieval", "Image-text retrieval evaluation.");
        cmd.Subcommands.Add(eval);
        return cmd;
    }
}
