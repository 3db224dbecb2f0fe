using System.CommandLine;
using System.Text.Json;
using MLNet.Align.Cli.Commands;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Tests.ZeroShot;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.Cli;

/// <summary>`zeroshot build|eval --prompts simple|wordnet --wordnet DIR [--renormalize]` through the command line.</summary>
[Collection("cli-console")]
public class ZeroShotPromptsCliTests(EvalCommandFixture fx, ITestOutputHelper output) : IClassFixture<EvalCommandFixture>
{
    private static (int Code, string Out, string Error) Run(params string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        try { return (new RootCommand { new ZeroShotCommand().Build() }.Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldError); }
    }

    [Fact]
    public void EvalWithWordNetPromptsMatchesADirectEvaluationUnderBothConventions()
    {
        using var wordnet = WordNetExcerpt.Clothing(); // knows Trouser, Bag, Sneaker, Ankle boot (as boot), T-shirt/top (as t-shirt)
        using var model = AlignedModel.Load(fx.Bundle);
        using var image = PackagedEncoders.ResNet18();
        using var text = PackagedEncoders.MiniLM();
        var results = new List<double>();
        foreach (bool renormalize in new[] { false, true })
        {
            var json = Path.Combine(fx.Root, $"wordnet-{renormalize}.json");
            string[] args = ["zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--cache", fx.Cache, "--out", json,
                "--prompts", "wordnet", "--wordnet", wordnet.Dir, .. renormalize ? new[] { "--renormalize" } : []];
            var (code, stdout, stderr) = Run(args);
            output.WriteLine(stdout + stderr);
            Assert.True(code == 0, stderr);
            var r = JsonDocument.Parse(File.ReadAllText(json)).RootElement;

            // Direct: the cached features, the same templates plus the excerpt's gloss sentences.
            using var cache = new FeatureCache(fx.Cache, image, text);
            var (features, labels, classNames) = cache.EncodeImageFolder(fx.Fashion);
            var desc = PromptSets.WordNetLookup(classNames, wordnet.Dir);
            var classes = ClassEmbeddingBuilder.Build(classNames, PromptTemplates.SimpleImageNet, text, model, desc.Descriptions,
                new ClassEmbeddingOptions { Renormalize = renormalize });
            var expected = ZeroShotEvaluator.Evaluate(model.ProjectImages(features), classes.Matrix, labels, classNames);
            Assert.Equal(expected.Top1, r.GetProperty("top1").GetDouble());
            Assert.Equal(expected.Top5, r.GetProperty("top5").GetDouble());
            Assert.Equal(expected.PerClassAccuracy, r.GetProperty("per_class").EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Null ? (double?)null : x.GetDouble()));
            results.Add(expected.MeanPerClassAccuracy);

            Assert.Equal("wordnet", r.GetProperty("prompts").GetString());
            Assert.Equal("simple-imagenet", r.GetProperty("templates").GetString());
            Assert.StartsWith(renormalize ? "renormalized mean" : "mean of normalised sentence embeddings, not renormalized", r.GetProperty("class_vectors").GetString());
            Assert.Equal(["T-shirt/top", "Trouser", "Sneaker", "Bag", "Ankle boot"], r.GetProperty("glossed_classes").EnumerateArray().Select(g => g.GetProperty("class").GetString()));
            Assert.Equal(["t-shirt", "trouser", "sneaker", "bag", "boot"], r.GetProperty("glossed_classes").EnumerateArray().Select(g => g.GetProperty("lemma").GetString()));
            Assert.Equal(["Pullover", "Dress", "Coat", "Sandal", "Shirt"], r.GetProperty("unglossed_classes").EnumerateArray().Select(g => g.GetString()));
            Assert.Equal(classNames.Select(c => 7 + (desc.Descriptions.For(c).Count)), r.GetProperty("sentences_per_class").EnumerateArray().Select(v => v.GetInt32()));
            Assert.Contains("prompts: wordnet (templates simple-imagenet, 7 + 5 WordNet gloss sentences for 5/10 classes: T-shirt/top (as t-shirt), Trouser, Sneaker, Bag, Ankle boot (as boot); no gloss: Pullover, Dress, Coat, Sandal, Shirt)", stdout);
            Assert.Contains(renormalize ? "class vectors: renormalized mean" : "class vectors: mean of normalised sentence embeddings, not renormalized", stdout);
        }
        output.WriteLine($"mean per class: paper mean {results[0]:P2}, renormalised {results[1]:P2}");

        // The default prompt set is the templates alone.
        var plainJson = Path.Combine(fx.Root, "simple.json");
        var (c2, out2, err2) = Run("zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--cache", fx.Cache, "--out", plainJson);
        Assert.True(c2 == 0, err2);
        var plain = JsonDocument.Parse(File.ReadAllText(plainJson)).RootElement;
        Assert.Equal("simple", plain.GetProperty("prompts").GetString());
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("glossed_classes").ValueKind);
        Assert.All(plain.GetProperty("sentences_per_class").EnumerateArray(), v => Assert.Equal(7, v.GetInt32()));
        Assert.Contains("prompts: simple (templates simple-imagenet, 7); class vectors: mean of normalised sentence embeddings, not renormalized", out2);
    }

    [Fact]
    public void BadPromptSetOrMissingWordNetFolderGivesOneErrorLine()
    {
        var classesFile = Path.Combine(fx.Root, "prompt-classes.txt");
        File.WriteAllLines(classesFile, ["Trouser", "Bag"]);
        var missing = Path.Combine(fx.Root, "no-such-wordnet");
        using var noData = WordNetExcerpt.Clothing();
        File.Delete(noData.DataPath);
        var cases = new (string[] Args, string Names)[]
        {
            (["zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--cache", fx.Cache, "--prompts", "cupl"], "'cupl'"),
            (["zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--cache", fx.Cache, "--prompts", "wordnet", "--wordnet", missing], missing),
            (["zeroshot", "eval", "--model", fx.Bundle, "--image-folder", fx.Fashion, "--cache", fx.Cache, "--prompts", "wordnet", "--wordnet", noData.Dir], noData.DataPath),
            (["zeroshot", "build", "--model", fx.Bundle, "--classes", classesFile, "--prompts", "glosses"], "'glosses'"),
            (["zeroshot", "build", "--model", fx.Bundle, "--classes", classesFile, "--prompts", "wordnet", "--wordnet", missing], missing),
        };
        foreach (var (args, names) in cases)
        {
            var outFile = Path.Combine(fx.Root, $"out-{Guid.NewGuid():N}.{(args[1] == "build" ? "zip" : "json")}");
            var (code, stdout, stderr) = Run([.. args, "--out", outFile]);
            output.WriteLine($"{string.Join(' ', args.Skip(1).Take(1).Concat(args.SkipWhile(a => a != "--prompts")))} -> {code}: {stderr.Trim()}");
            Assert.Equal(1, code);
            Assert.StartsWith("error: ", stderr);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Contains(names, stderr);
            Assert.Contains(names.StartsWith('\'') ? "--prompts" : "WordNet", stderr);
            Assert.False(File.Exists(outFile), "no partial output");
        }
    }
}
