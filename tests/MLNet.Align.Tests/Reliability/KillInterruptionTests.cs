using System.Diagnostics;
using System.Runtime.InteropServices;
using MLNet.Align.Cli.Commands;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Reliability;

/// <summary>
/// kill -9 of a real `mlnet-align` child process (no chance to clean up or checkpoint on exit) during `embed` and
/// `train`, then the same command again (`--resume` for train): the outputs must be byte-identical to an
/// uninterrupted run's (embed: every shard file; train: the bundle's weights.bin), and no temp file may survive.
/// </summary>
[Collection("cli-console")]
public class KillInterruptionTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kill9-").FullName;
    private string P(string name) => Path.Combine(_dir, name);
    public void Dispose() { try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } }

    private static ProcessStartInfo Cli(params string[] args) => CliProcess.StartInfo(args);

    private (int Exit, string Err) RunToEnd(params string[] args)
    {
        using var p = Process.Start(Cli(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(5)), "child did not finish");
        return (p.ExitCode, stderr.Result + stdout.Result);
    }

    /// <summary>Starts the command and SIGKILLs it as soon as <paramref name="ready"/> holds; returns whether it was
    /// killed mid-run (false if it finished first).</summary>
    private bool KillWhen(Func<bool> ready, params string[] args)
    {
        using var p = Process.Start(Cli(args))!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!ready() && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(5);
        bool killed = !p.HasExited;
        if (killed) p.Kill(entireProcessTree: true); // SIGKILL
        p.WaitForExit();
        return killed;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [Fact]
    public async Task Embed_interrupted_with_SIGINT_says_how_to_resume_and_the_rerun_completes_identically()
    {
        // The 56 real fixture pairs, each image reached through 6 symbolic links (336 distinct paths, a few seconds of
        // encoding), 8 rows per shard, so the signal lands mid-run.
        Directory.CreateDirectory(P("img"));
        var rows = new List<string>();
        for (int copy = 0; copy < 6; copy++)
            foreach (var (pair, i) in FixtureFeatures.Pairs.Select((x, i) => (x, i)))
            {
                string link = P($"img/{copy}-{i}{Path.GetExtension(pair.Image)}");
                if (!File.Exists(link)) File.CreateSymbolicLink(link, Path.Combine(FixtureFeatures.Dir, "pairs", pair.Image));
                rows.Add($"{link}\t{pair.Caption}\n");
            }
        File.WriteAllText(P("pairs.tsv"), "image\tcaption\n" + string.Concat(rows));
        string[] Embed(string outDir) => ["embed", "--pairs", P("pairs.tsv"), "--out", outDir, "--shard-size", "8", "--batch-size", "4"];
        Assert.Equal(0, RunToEnd(Embed(P("store-ref"))).Exit);

        using var p = Process.Start(CliProcess.StartInfoWithDefaultSigint(Embed(P("store-int"))))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        bool Started() => Directory.Exists(P("store-int")) && Directory.EnumerateFiles(P("store-int"), "*", SearchOption.AllDirectories)
            .Any(f => !f.EndsWith(".json") && !Path.GetFileName(f).Contains("tmp"));
        while (!Started() && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(5);
        Assert.False(p.HasExited, "embed finished before it could be interrupted");
        Assert.Equal(0, kill(p.Id, 2)); // SIGINT, as Ctrl+C sends
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "embed did not stop after SIGINT");
        string err = await stderr;
        output.WriteLine($"exit {p.ExitCode}: {err.Trim()}");
        Assert.Contains("run the same command again to resume", err);
        Assert.NotEqual(0, p.ExitCode);
        Assert.True(Shards(P("store-int")).Length < Shards(P("store-ref")).Length, "the interrupted run should have stopped early");

        var (exit, log) = RunToEnd(Embed(P("store-int")));
        Assert.True(exit == 0, log);
        Assert.Equal(Shards(P("store-ref")), Shards(P("store-int")));
        NoTemps(P("store-int"));
        _ = await stdout;
    }

    private static byte[][] Shards(string store)
        => Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".json")).Order(StringComparer.Ordinal)
            .Select(File.ReadAllBytes).ToArray();

    private static void NoTemps(string dir)
        => Assert.Empty(Directory.EnumerateFileSystemEntries(dir, "*tmp*", SearchOption.AllDirectories));

    [Fact]
    public void Embed_and_train_killed_with_SIGKILL_resume_to_byte_identical_outputs()
    {
        // 24 real fixture pairs, 3 per shard: the kill lands after the first shard and before the last.
        var rows = FixtureFeatures.Pairs.Take(24).Select(p => $"{Path.Combine(FixtureFeatures.Dir, "pairs", p.Image)}\t{p.Caption}\n");
        File.WriteAllText(P("pairs.tsv"), "image\tcaption\n" + string.Concat(rows));
        string[] Embed(string outDir) => ["embed", "--pairs", P("pairs.tsv"), "--out", outDir, "--shard-size", "3", "--batch-size", "3"];
        Assert.Equal(0, RunToEnd(Embed(P("store-ref"))).Exit);
        bool embedKilled = KillWhen(() => Directory.Exists(P("store-cut")) && Directory.EnumerateFiles(P("store-cut"), "*", SearchOption.AllDirectories)
            .Count(f => !f.EndsWith(".json") && !Path.GetFileName(f).Contains("tmp")) >= 1, Embed(P("store-cut")));
        Assert.True(embedKilled, "embed finished before it could be killed");
        var (exit, log) = RunToEnd(Embed(P("store-cut")));
        Assert.True(exit == 0, log);
        Assert.Equal(Shards(P("store-ref")), Shards(P("store-cut")));
        NoTemps(P("store-cut"));

        // train: 1 torch thread (bit-exact), a checkpoint every 4 steps; kill after the first one.
        File.WriteAllText(P("config.json"), new MLNet.Align.Projection.AlignmentOptions
        {
            Projector = new MLNet.Align.Projection.ProjectorOptions { EmbeddingDimension = 256 },
            Training = new MLNet.Align.Projection.AlignmentTrainingOptions { Epochs = 150, BatchSize = 4, TorchThreads = 1, CheckpointEverySteps = 4 },
        }.ToJson());
        string[] Train(string outDir, bool resume) => ["train", "--store", P("store-ref"), "--out", outDir, "--config", P("config.json"), .. (resume ? new[] { "--resume" } : [])];
        Assert.Equal(0, RunToEnd(Train(P("train-ref"), false)).Exit);
        var ckpt = Path.Combine(P("train-cut"), "checkpoints", "checkpoint.bin");
        bool trainKilled = KillWhen(() => File.Exists(ckpt), Train(P("train-cut"), false));
        Assert.True(trainKilled, "train finished before it could be killed");
        Assert.False(File.Exists(Path.Combine(P("train-cut"), "model", "weights.bin")));
        (exit, log) = RunToEnd(Train(P("train-cut"), true));
        Assert.True(exit == 0, log);
        Assert.Contains("Resumed from", log);
        Assert.Equal(File.ReadAllBytes(Path.Combine(P("train-ref"), "model", "weights.bin")), File.ReadAllBytes(Path.Combine(P("train-cut"), "model", "weights.bin")));
        NoTemps(P("train-cut"));
        output.WriteLine("embed and train: killed mid-run with SIGKILL, resumed byte-identical");
    }
}
