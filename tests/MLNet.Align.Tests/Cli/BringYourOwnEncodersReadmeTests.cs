using System.CommandLine;
using System.Text;
using System.Text.Json;
using MLNet.Align.Cli;
using MLNet.Align.Terminal;
using MLNet.Align.Projection;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Cli;

/// <summary>
/// README "Bring your own encoders" must be commands that run: this test reads the block between
/// <c>&lt;!-- byo-commands</c> and <c>&lt;!-- /byo-commands --&gt;</c> in README.md and runs each <c>mlnet-align</c>
/// line in-process on the generated stand-ins (<see cref="StandInKit"/>). Only file paths, <c>--embedding-dim</c> and
/// <c>--epochs</c> are replaced (listed in <see cref="Substitutions"/>); every flag is the README's.
/// </summary>
[Collection("cli-console")]
public class BringYourOwnEncodersReadmeTests(ITestOutputHelper output)
{
    private static string ReadmePath => Path.Combine(RepoRoot.Path, "README.md");

    /// <summary>The README's commands: lines of the fenced block, '\' continuations joined, split like a shell
    /// (double quotes group).</summary>
    internal static List<string[]> ReadmeCommands()
    {
        var text = File.ReadAllText(ReadmePath);
        int start = text.IndexOf("<!-- byo-commands", StringComparison.Ordinal), end = text.IndexOf("<!-- /byo-commands -->", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "README.md has no byo-commands block");
        var block = text[start..end];
        var lines = block.Split('\n').SkipWhile(l => !l.StartsWith("```", StringComparison.Ordinal)).Skip(1).TakeWhile(l => !l.StartsWith("```", StringComparison.Ordinal));
        var joined = string.Join("\n", lines).Replace("\\\n", " ");
        var commands = new List<string[]>();
        foreach (var line in joined.Split('\n').Where(l => l.Trim().Length > 0))
        {
            var args = new List<string>();
            var cur = new StringBuilder();
            bool quoted = false, any = false;
            foreach (char c in line)
            {
                if (c == '"') { quoted = !quoted; any = true; }
                else if (char.IsWhiteSpace(c) && !quoted) { if (any) args.Add(cur.ToString()); cur.Clear(); any = false; }
                else { cur.Append(c); any = true; }
            }
            if (any) args.Add(cur.ToString());
            Assert.Equal("mlnet-align", args[0]);
            commands.Add(args.Skip(1).ToArray());
        }
        return commands;
    }

    private static Dictionary<string, string> Substitutions(string work) => new()
    {
        ["pairs.tsv"] = FixtureFeatures.PairsFile,
        ["test-pairs.tsv"] = FixtureFeatures.PairsFile,
        ["store"] = Path.Combine(work, "store"),
        ["run"] = Path.Combine(work, "run"),
        ["run/model"] = Path.Combine(work, "run", "model"),
        ["dinov2-large.onnx"] = StandInKit.VitPath,
        ["all-roberta-large-v1.onnx"] = StandInKit.RobertaPath,
        ["vocab.json"] = StandInKit.VocabPath,
        ["merges.txt"] = StandInKit.MergesPath,
        ["imagenet-val"] = Path.Combine(work, "image-folder"),
        ["--embedding-dim 1024"] = "32",
        ["--epochs 10"] = "3",
    };

    private static RootCommand Root()
    {
        var root = new RootCommand();
        foreach (var type in typeof(MLNet.Align.Cli.Commands.TrainCommand).Assembly.GetTypes().Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface))
            root.Subcommands.Add(((ICliCommand)Activator.CreateInstance(type)!).Build());
        return root;
    }

    private (int Code, string Out, string Err) Run(string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        int code;
        try { code = Root().Parse(args).Invoke(); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        output.WriteLine($"$ mlnet-align {string.Join(' ', args)}\n-> {code}\n{o}{e}");
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>An ImageFolder tree of the fixture images, one folder per coarse label.</summary>
    private static void MakeImageFolder(string root)
    {
        foreach (var (path, label) in FixtureFeatures.ImagePaths.Zip(FixtureFeatures.Labels))
        {
            var dir = Path.Combine(root, label.Replace(' ', '_'));
            Directory.CreateDirectory(dir);
            File.Copy(path, Path.Combine(dir, Path.GetFileName(path)), overwrite: true);
        }
    }

    [Fact]
    public void Readme_commands_run_on_the_standins_and_the_bundle_reopens_its_encoders()
    {
        string work = Path.Combine(Path.GetTempPath(), "byo-readme-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        var subs = Substitutions(work);
        MakeImageFolder(subs["imagenet-val"]);
        var commands = ReadmeCommands();
        Assert.Equal(["embed", "train", "retrieval", "zeroshot"], commands.Select(c => c[0]).ToArray());
        foreach (var raw in commands)
        {
            var args = raw.ToArray();
            for (int i = 0; i < args.Length; i++)
            {
                if (i > 0 && subs.TryGetValue($"{args[i - 1]} {args[i]}", out var value)) args[i] = value;
                else if (subs.TryGetValue(args[i], out var path)) args[i] = path;
            }
            var (code, _, err) = Run(args);
            Assert.True(code == 0, $"mlnet-align {string.Join(' ', raw)} exited {code}: {err}");
        }

        // The bundle holds the complete encoder options, paths and SHA-256 (no encoder flags were given to eval).
        var bundle = Path.Combine(work, "run", "model");
        using (var model = AlignedModel.Load(bundle))
        {
            Assert.True(model.UsesImageTokens && model.UsesTextTokens);
            Assert.Equal(StandInKit.VitPath, model.ImageEncoderSource!.Image!.ModelPath);
            Assert.Equal(MLNet.Align.Encoders.ImagePooling.Cls, model.ImageEncoderSource.Image.Pooling);
            Assert.Equal(256, model.ImageEncoderSource.Image.ResizeSize);
            Assert.Equal(MLNet.Align.Encoders.TextTokenizerKind.ByteLevelBpe, model.TextEncoderSource!.Text!.TokenizerKind);
            Assert.Equal(3, model.TextEncoderSource.Files.Count); // model, vocab.json, merges.txt
        }
        var json = File.ReadAllText(Path.Combine(bundle, AlignedModel.ManifestFile));
        Assert.Contains("\"RegisterTokens\": 0", json);

        // A moved encoder file is a clear error, not a silent fallback.
        string evalArgs = $"retrieval eval --model {bundle} --pairs {FixtureFeatures.PairsFile}";
        var moved = StandInKit.VocabPath + ".moved";
        File.Move(StandInKit.VocabPath, moved);
        try
        {
            var (code, _, err) = Run(evalArgs.Split(' '));
            Assert.Equal(1, code);
            Assert.Contains($"The text encoder file '{StandInKit.VocabPath}' recorded in {Path.Combine(bundle, AlignedModel.ManifestFile)} does not exist", err);
            Assert.DoesNotContain("   at ", err);
        }
        finally { File.Move(moved, StandInKit.VocabPath); }

        // A changed one too (SHA-256 named).
        string copy = Path.Combine(work, "vit-copy.onnx");
        File.Copy(StandInKit.VitPath, copy);
        File.WriteAllText(Path.Combine(bundle, AlignedModel.ManifestFile), json.Replace(JsonSerializer.Serialize(StandInKit.VitPath)[1..^1], copy));
        File.AppendAllText(copy, "x");
        var (changedCode, _, changedErr) = Run(evalArgs.Split(' '));
        Assert.Equal(1, changedCode);
        Assert.Contains($"The image encoder file '{copy}'", changedErr);
        Assert.Contains("has changed: SHA-256", changedErr);
    }
}
