using System.CommandLine;
using MLNet.Align.Embeddings;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align pairs from-folders ROOT --out pairs.tsv`: captioned pairs with a label column from a labelled
/// folder tree (ROOT/CLASS/*.png), for users who have labels, not captions.</summary>
public sealed class PairsCommand : ICliCommand
{
    public Command Build()
    {
        var root = new Argument<string>("root") { Description = "Folder with one subfolder per class (ImageFolder layout; class name = folder name with '_' as space, or classes.tsv)." };
        var output = new Option<string>("--out") { Description = "Pairs file to write (TSV: image, caption, label).", Required = true };
        var templates = new Option<string>("--templates") { Description = "Caption template file (one per line with {}) or built-in set: simple-imagenet, openai-imagenet, photo, icons.", DefaultValueFactory = _ => "simple-imagenet" };
        var prompts = new Option<string>("--prompts") { Description = "simple (templates only) or wordnet (templates plus sentences from each class's WordNet gloss, where found).", DefaultValueFactory = _ => "simple" };
        var wordnet = new Option<string>("--wordnet") { Description = "WordNet 3.0 dictionary folder (Debian wordnet-base).", DefaultValueFactory = _ => "/usr/share/wordnet" };
        var perImage = new Option<int>("--captions-per-image") { Description = "Rows (captions) per image, each from the next template in turn.", DefaultValueFactory = _ => 1 };
        var fromFolders = new Command("from-folders", "Write captioned pairs with a label column from a labelled folder tree.") { root, output, templates, prompts, wordnet, perImage };
        fromFolders.SetAction(parse => CliErrors.Run(() =>
        {
            string dir = parse.GetValue(root)!, outPath = parse.GetValue(output)!;
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Image folder '{dir}' does not exist.");
            if (Directory.Exists(outPath)) throw new ArgumentException($"--out '{outPath}' is a folder; give the pairs file to write.");
            var tpl = PromptTemplates.LoadOrBuiltIn(parse.GetValue(templates)!);
            string mode = parse.GetValue(prompts)!.Trim().ToLowerInvariant();
            if (mode is not ("simple" or "wordnet")) throw new ArgumentException($"--prompts '{parse.GetValue(prompts)}' is not a prompt set; expected 'simple' or 'wordnet'.");
            var ds = ImageFolderDataset.Load(dir);
            if (ds.Count == 0) throw new InvalidDataException($"'{dir}' has {ds.ClassNames.Count} class folder(s) but no images ({string.Join(", ", ImageFolderDataset.DefaultExtensions)}).");
            IReadOnlyDictionary<string, IReadOnlyList<string>>? extra = null;
            if (mode == "wordnet")
            {
                var found = PromptSets.WordNet(ds.ClassNames, parse.GetValue(wordnet)!);
                extra = ds.ClassNames.Where(c => found.For(c).Count > 0).ToDictionary(c => c, c => found.For(c), StringComparer.Ordinal);
            }
            var pairs = LabelledFolderPairs.Build(ds, tpl, parse.GetValue(perImage), extra);
            LabelledFolderPairs.WriteTsv(outPath, pairs);
            Console.WriteLine($"Wrote {outPath}: {pairs.Count} pairs, {ds.Count} images in {ds.ClassNames.Count} classes, captions from {tpl.Count} templates ({tpl.Name})" +
                (extra is null ? "" : $" and WordNet glosses for {extra.Count} of {ds.ClassNames.Count} classes") + ".");
            return 0;
        }));
        var cmd = new Command("pairs", "Make pairs files.");
        cmd.Subcommands.Add(fromFolders);
        return cmd;
    }
}
