using System.CommandLine;
using System.Text.Json;
using MLNet.Align.Cli.Commands;
using MLNet.Align.Demo.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Cli;

/// <summary>The 56 fixture pairs (with their label column) embedded once, and 60 Fashion-MNIST fixture images as a
/// labelled folder tree, for the recipe commands.</summary>
public sealed class RecipeCliFixture : IDisposable
{
    public RecipeCliFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"cli-recipes-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
        Assert.Equal(0, EmbedCommand.Run(new EmbedCommand.EmbedArgs { Pairs = FixtureFeatures.PairsFile, Output = Store }));
        var labelled = Path.Combine(AppContext.BaseDirectory, "fixtures", "labelled");
        var set = IdxReader.ReadLabelled(Path.Combine(labelled, "fashion-mnist-t10k-300-images-idx3-ubyte"),
            Path.Combine(labelled, "fashion-mnist-t10k-300-labels-idx1-ubyte"), IdxReader.FashionMnistClassNames, maxCount: 60);
        Assert.True(ImageFolderExport.Export(set, Fashion));
        using var image = PackagedEncoders.ResNet18();
        using var text = PackagedEncoders.MiniLM();
        using var model = AlignedModel.FromLinearMap(ProcrustesMap.Fit(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled));
        model.ImageEncoder = image.Identity;
        model.TextEncoder = text.Identity;
        model.Save(Model);
    }

    public string Root { get; }
    public string Model => Path.Combine(Root, "procrustes-model");
    public string Store => Path.Combine(Root, "store");
    public string Fashion => Path.Combine(Root, "fashion");
    public string P(string name) => Path.Combine(Root, name);

    public void Dispose() { if (Directory.Exists(Root)) Directory.Delete(Root, true); }
}

/// <summary>`train --recipe` (auto by default), `pairs from-folders` and `zeroshot eval --pairs`, run in process.</summary>
[Collection("cli-console")]
public class RecipeCliTests(RecipeCliFixture fx, ITestOutputHelper output) : IClassFixture<RecipeCliFixture>
{
    private static RootCommand Root() => new() { new TrainCommand().Build(), new PairsCommand().Build(), new ZeroShotCommand().Build() };

    private (int Code, string Out, string Error) Run(params string[] args) => CliConsole.Run(Root(), output, args);

    [Fact]
    public void TrainWithNoRecipeFitsEveryRecipeAndKeepsTheBestOnHeldOutGroups()
    {
        TorchSharp.torch.set_num_threads(1);
        var outDir = fx.P("auto");
        var (code, stdout, stderr) = Run("train", "--store", fx.Store, "--out", outDir, "--epochs", "2", "--batch-size", "16", "--seed", "5");
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "training.json"))).RootElement;
        var candidates = json.GetProperty("candidates").EnumerateArray().ToList();
        Assert.Equal(["least-squares", "reverse-ridge", "procrustes", "asif", "locked-text", "both-sides", "pooled-mlp"],
            candidates.Select(c => c.GetProperty("recipe").GetString()));
        var scores = candidates.Select(c => (Name: c.GetProperty("recipe").GetString()!, Score: c.GetProperty("validation").GetProperty("score").GetDouble())).ToList();
        var winner = json.GetProperty("winner").GetString();
        Assert.Equal(scores.MaxBy(s => s.Score).Name, winner);
        // The fixture's label column gives zero-shot on the held-out images too.
        Assert.All(candidates, c => Assert.Equal(JsonValueKind.Number, c.GetProperty("validation").GetProperty("zeroShotTop1").ValueKind));
        Assert.Contains("held out", json.GetProperty("validation").GetString());
        Assert.Contains($"Chose {winner}: {winner} has the highest validation score", stdout);
        using var model = AlignedModel.Load(Path.Combine(outDir, "model"));
        Assert.Equal(winner, model.Name);
        Assert.True(File.Exists(Path.Combine(outDir, "recipes.png")));
    }

    [Fact]
    public void EveryClosedFormRecipeSavesABundleThatZeroShotEvalServes()
    {
        var pairs = fx.P("fashion-pairs.tsv");
        var (c0, out0, err0) = Run("pairs", "from-folders", fx.Fashion, "--out", pairs, "--templates", "photo");
        Assert.True(c0 == 0, err0);
        Assert.Contains("60 pairs, 60 images in 10 classes", out0);
        var lines = File.ReadAllLines(pairs);
        Assert.Equal("image\tcaption\tlabel", lines[0]);
        Assert.Equal(61, lines.Length);
        Assert.All(lines.Skip(1), l => { var f = l.Split('\t'); Assert.Equal($"a photo of a {f[2]}.", f[1]); Assert.True(File.Exists(Path.Combine(fx.Root, f[0]))); });

        foreach (var recipe in new[] { "procrustes", "asif" })
        {
            var outDir = fx.P("r-" + recipe);
            var (code, _, stderr) = Run("train", "--store", fx.Store, "--out", outDir, "--recipe", recipe);
            Assert.True(code == 0, stderr);
            using var model = AlignedModel.Load(Path.Combine(outDir, "model"));
            Assert.Equal(recipe, model.Name);
            var json = fx.P($"zs-{recipe}.json");
            var (c2, out2, err2) = Run("zeroshot", "eval", "--model", outDir, "--pairs", pairs, "--templates", "photo", "--out", json, "--cache", fx.P("cache"));
            Assert.True(c2 == 0, err2);
            // Direct: the same images and prompts through the library.
            var ds = ImageFolderDataset.Load(fx.Fashion);
            using var image = PackagedEncoders.ResNet18();
            using var text = PackagedEncoders.MiniLM();
            var features = new EmbeddingMatrix(image.EncodeBatch(ds.Items.Select(i => i.Path).ToList()).Pooled.Data.Select(v => (float)(Half)v).ToArray(), 60, 512);
            var classes = ds.ClassNames.Order(StringComparer.Ordinal).ToArray();
            var labels = ds.Items.Select(i => Array.IndexOf(classes, ds.ClassNames[i.Label])).ToArray();
            var expected = ProjectorEvaluation.ZeroShot(model, features, labels, text.EncodeBatch(classes.Select(c => $"a photo of a {c}.").ToList()).Pooled,
                Enumerable.Range(0, classes.Length).ToArray(), classes);
            var r = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
            Assert.Equal(60, r.GetProperty("n").GetInt32());
            Assert.Equal(expected.Top1, r.GetProperty("top1").GetDouble(), 9);
            Assert.Contains($"top-1 {expected.Top1:P2}", out2);
        }
    }

    [Theory]
    [InlineData("unknown-recipe", new[] { "--recipe", "procrustus" }, "Unknown recipe 'procrustus'. Known: auto, least-squares")]
    [InlineData("recipe-and-config", new[] { "--recipe", "asif", "--projector", "paper" }, "--recipe cannot be combined with --config, --projector")]
    [InlineData("token-recipe-on-pooled-store", new[] { "--recipe", "paper" }, "Recipe 'paper' needs token features: embed the pairs with --tokens.")]
    [InlineData("missing-validation", new[] { "--validation", "/nonexistent/val.tsv" }, "--validation '/nonexistent/val.tsv' is neither a pairs file nor a folder.")]
    public void BadRecipeArgumentsGiveOneErrorLine(string id, string[] extra, string message)
    {
        var (code, _, stderr) = Run(["train", "--store", fx.Store, "--out", fx.P("bad-" + id), .. extra]);
        Assert.Equal(1, code);
        Assert.Contains("error: " + message, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void FromFoldersAndZeroShotPairsRefuseBadInput()
    {
        var (c1, _, e1) = Run("pairs", "from-folders", fx.P("no-such-folder"), "--out", fx.P("x.tsv"));
        Assert.Equal(1, c1);
        Assert.Contains("error: Image folder '", e1);
        var nolabel = fx.P("nolabel.tsv");
        File.WriteAllText(nolabel, "image\tcaption\n" + string.Join("\n", Directory.GetFiles(Path.Combine(fx.Fashion, "Bag")).Select(f => $"{f}\ta bag")) + "\n");
        var (c2, _, e2) = Run("zeroshot", "eval", "--model", fx.Model, "--pairs", nolabel);
        Assert.Equal(1, c2);
        Assert.Contains("has no 'label' column", e2);
        var (c3, _, e3) = Run("zeroshot", "eval", "--model", fx.Model);
        Assert.Equal(1, c3);
        Assert.Contains("Give exactly one of --image-folder ROOT or --pairs FILE", e3);
    }
}
