using System.CommandLine;
using System.Text.Json;
using MLNet.Align.Cli.Commands;
using MLNet.Align.Demo.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Tests.Projection;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.Cli;

/// <summary>The commands capture Console.Out/Error, so nothing else may run beside them.</summary>
[CollectionDefinition("cli-console", DisableParallelization = true)]
public sealed class CliConsoleCollection { }

/// <summary>A closed-form-initialised projector bundle over the packaged encoders and the 300 Fashion-MNIST fixture
/// images exported as an ImageFolder, shared by the evaluation-command tests.</summary>
public sealed class EvalCommandFixture : IDisposable
{
    public EvalCommandFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"cli-eval-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
        using (var image = PackagedEncoders.ResNet18())
        using (var text = PackagedEncoders.MiniLM())
        using (var model = new AlignedModel(new ProjectorOptions { ImageGlobal = ProjectorKind.Token, TextGlobal = ProjectorKind.Token, EmbeddingDimension = 384 }, 512, 384, seed: 2))
        {
            // Fitted on the even pairs only, so retrieval over all 56 is not trivially perfect.
            var even = Enumerable.Range(0, 28).Select(i => 2 * i).ToArray();
            ClosedFormInitializer.Create(ClosedFormKind.LeastSquares, FixtureFeatures.Images.Pooled.SelectRows(even), FixtureFeatures.Texts.Pooled.SelectRows(even))(model);
            model.ImageEncoder = image.Identity;
            model.TextEncoder = text.Identity;
            model.Save(Bundle);
        }
        var labelled = Path.Combine(AppContext.BaseDirectory, "fixtures", "labelled");
        var set = IdxReader.ReadLabelled(Path.Combine(labelled, "fashion-mnist-t10k-300-images-idx3-ubyte"),
            Path.Combine(labelled, "fashion-mnist-t10k-300-labels-idx1-ubyte"), IdxReader.FashionMnistClassNames, maxCount: ImageCount);
        Assert.True(ImageFolderExport.Export(set, Fashion));
    }

    /// <summary>Fashion-MNIST items used: the first 60 of the 300 fixture images (all 10 classes, 4-8 each; ResNet-18 encodes
    /// ~14 images/s on the 2 shared cores, and the test encodes them twice: through the CLI and directly).</summary>
    public const int ImageCount = 60;

    public string Root { get; }
    public string Bundle => Path.Combine(Root, "bundle");
    public string Fashion => Path.Combine(Root, "fashion");
    public string Cache => Path.Combine(Root, "cache");

    public void Dispose() { if (Directory.Exists(Root)) Directory.Delete(Root, true); }
}

[Collection("cli-console")]
public class EvalCommandTests(EvalCommandFixture fx, ITestOutputHelper output) : IClassFixture<EvalCommandFixture>
{
    private static RootCommand Root() => new() { new ZeroShotCommand().Build(), new RetrievalCommand().Build() };

    /// <summary>Runs the CLI in-process, returning the exit code and what it printed.</summary>
    private static (int Code, string Out, string Error) Run(params string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        try { return (Root().Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldError); }
    }

    /// <summary>What the cache stores: features rounded to fp16.</summary>
    private static EmbeddingMatrix Fp16(EmbeddingMatrix m) => new(m.Data.Select(v => (float)(Half)v).ToArray(), m.Rows, m.Columns);

    /// <summary>Every file under the cache with its size and last write time: unchanged = nothing re-encoded.</summary>
    private static string Snapshot(string root) => string.Join("\n", Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
        .Select(f => $"{Path.GetRelativePath(root, f)} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f):O}"));

    [Fact]
    public void ZeroShotEvalMatchesADirectEvaluationAndReusesTheCache()
    {
        var json = Path.Combine(fx.Root, "zeroshot.json");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var (code, stdout, stderr) = Run("zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--out", json, "--cache", fx.Cache);
        output.WriteLine($"first run {sw.Elapsed.TotalSeconds:F1} s:\n{stdout}{stderr}");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var r = doc.RootElement;

        // Direct: encode the exported PNGs in the dataset's order, round as the cache does, prompts from the same
        // templates, ProjectorEvaluation.
        var ds = ImageFolderDataset.Load(fx.Fashion);
        using var model = AlignedModel.Load(fx.Bundle);
        using var image = PackagedEncoders.ResNet18();
        using var text = PackagedEncoders.MiniLM();
        var features = Fp16(image.EncodeBatch(ds.Items.Select(i => i.Path).ToList()).Pooled);
        var templates = PromptTemplates.SimpleImageNet;
        var prompts = ds.ClassNames.SelectMany(c => templates.Apply(c)).ToList();
        var promptClass = Enumerable.Range(0, ds.ClassNames.Count).SelectMany(c => Enumerable.Repeat(c, templates.Count)).ToArray();
        var expected = ProjectorEvaluation.ZeroShot(model, features, ds.Items.Select(i => i.Label).ToArray(),
            text.EncodeBatch(prompts).Pooled, promptClass, ds.ClassNames);
        output.WriteLine($"direct: top-1 {expected.Top1:P2}, top-5 {expected.Top5:P2}, mean per class {expected.MeanPerClassAccuracy:P2} (chance 10%)");

        Assert.Equal(EvalCommandFixture.ImageCount, r.GetProperty("n").GetInt32());
        Assert.Equal(10, ds.ClassNames.Count);
        Assert.Equal(10, ds.Items.Select(i => i.Label).Distinct().Count());
        Assert.Equal(expected.Top1, r.GetProperty("top1").GetDouble());
        Assert.Equal(expected.Top5, r.GetProperty("top5").GetDouble());
        Assert.Equal(expected.MeanPerClassAccuracy, r.GetProperty("mean_per_class").GetDouble());
        Assert.Equal(IdxReader.FashionMnistClassNames, r.GetProperty("classes").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(expected.PerClassAccuracy, r.GetProperty("per_class").EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Null ? (double?)null : x.GetDouble()));
        Assert.Contains($"top-1 {expected.Top1:P2}", stdout);

        // Second run: same result, and the cache is untouched (no encoder work, no rewritten store).
        var before = Snapshot(fx.Cache);
        var stores = Directory.GetDirectories(fx.Cache);
        sw.Restart();
        var (code2, stdout2, stderr2) = Run("zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--out", json, "--cache", fx.Cache);
        output.WriteLine($"second run {sw.Elapsed.TotalSeconds:F1} s:\n{stdout2}");
        Assert.True(code2 == 0, stderr2);
        Assert.Equal(before, Snapshot(fx.Cache));
        Assert.Equal(stores, Directory.GetDirectories(fx.Cache));
        Assert.DoesNotContain("encoded in", stdout2);
        Assert.Equal(expected.Top1, JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("top1").GetDouble());
    }

    [Fact]
    public void RetrievalEvalMatchesADirectEvaluationAndReusesTheCache()
    {
        var json = Path.Combine(fx.Root, "retrieval.json");
        var cache = Path.Combine(fx.Root, "retrieval-cache");
        var (code, stdout, stderr) = Run("retrieval", "eval", "--model", fx.Bundle, "--pairs", FixtureFeatures.PairsFile, "--out", json, "--cache", cache);
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(File.ReadAllText(json)).RootElement;

        using var model = AlignedModel.Load(fx.Bundle);
        var expected = ProjectorEvaluation.PairedRetrieval(model, Fp16(FixtureFeatures.Images.Pooled), Fp16(FixtureFeatures.Texts.Pooled));
        output.WriteLine($"direct: i2t R@1 {expected.ImageToText.R1:P2} R@5 {expected.ImageToText.R5:P2} R@10 {expected.ImageToText.R10:P2}; " +
                         $"t2i R@1 {expected.TextToImage.R1:P2} R@5 {expected.TextToImage.R5:P2} R@10 {expected.TextToImage.R10:P2}");
        Assert.Equal(56, r.GetProperty("n").GetInt32());
        Assert.Equal(56, r.GetProperty("n_captions").GetInt32());
        foreach (var (name, direct) in new[] { ("i2t", expected.ImageToText), ("t2i", expected.TextToImage) })
        {
            var d = r.GetProperty(name);
            Assert.Equal(direct.R1, d.GetProperty("r1").GetDouble());
            Assert.Equal(direct.R5, d.GetProperty("r5").GetDouble());
            Assert.Equal(direct.R10, d.GetProperty("r10").GetDouble());
            Assert.Equal(direct.MedianRank, d.GetProperty("median_rank").GetDouble());
        }
        // Half the pairs were held out of the fit: far better than chance (1/56), but not perfect.
        Assert.InRange(expected.ImageToText.R1, 0.2, 0.99);

        var before = Snapshot(cache);
        var (code2, stdout2, stderr2) = Run("retrieval", "eval", "--model", fx.Bundle, "--pairs", FixtureFeatures.PairsFile, "--out", json, "--cache", cache);
        Assert.True(code2 == 0, stderr2);
        Assert.Equal(before, Snapshot(cache));
        Assert.DoesNotContain("encoded in", stdout2);
    }

    [Fact]
    public void BadInputGivesAClearErrorNamingThePath()
    {
        var missing = Path.Combine(fx.Root, "no-such-bundle");
        var empty = Path.Combine(fx.Root, "empty-folder");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, "stray.png"), "not in a class folder");
        var cache = Path.Combine(fx.Root, "bad-cache");
        var cases = new (string[] Args, string Names)[]
        {
            (["zeroshot", "eval", "--model", missing, "--image-folder", fx.Fashion, "--cache", cache], missing),
            (["retrieval", "eval", "--model", missing, "--pairs", FixtureFeatures.PairsFile, "--cache", cache], missing),
            (["zeroshot", "eval", "--model", fx.Bundle, "--image-folder", empty, "--cache", cache], empty),
            (["zeroshot", "eval", "--model", fx.Bundle, "--image-folder", Path.Combine(fx.Root, "no-such-folder"), "--cache", cache], "no-such-folder"),
            (["retrieval", "eval", "--model", fx.Bundle, "--pairs", Path.Combine(fx.Root, "no-such.tsv"), "--cache", cache], "no-such.tsv"),
        };
        foreach (var (args, names) in cases)
        {
            var (code, _, stderr) = Run(args);
            output.WriteLine($"{string.Join(' ', args.Take(2))} ... -> {code}: {stderr.Trim()}");
            Assert.Equal(1, code);
            Assert.StartsWith("error: ", stderr);
            Assert.Contains(names, stderr);
            Assert.DoesNotContain("   at ", stderr); // a message, not a stack trace
        }
    }
}
