using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using MLNet.Align.Cli.Commands;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Search;

/// <summary>`index` and `search` as a user runs them: the summary line, JSON output, a SIGKILL mid-run and the re-run,
/// and one clear error line for each bad input.</summary>
[Collection("cli-console")]
public class SearchCliTests(SearchFixture fx, ITestOutputHelper output) : IClassFixture<SearchFixture>
{
    private static RootCommand Root() => new() { new IndexCommand().Build(), new SearchCommand().Build() };

    private (int Code, string Out, string Error) Run(params string[] args) => CliConsole.Run(Root(), output, args);

    [Fact]
    public void Index_then_search_prints_the_summary_and_json()
    {
        string photos = fx.Photos(), index = fx.NewIndexDir();
        var (code, stdout, stderr) = Run("index", "--model", fx.Model, "--images", photos, "--index", index);
        Assert.True(code == 0, stderr);
        Assert.Contains("56 new, 0 changed, 0 moved, 0 deleted, 0 skipped, 0 unchanged; 56 images indexed", stdout);
        File.Delete(Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First());
        (code, stdout, _) = Run("index", "--model", fx.Model, "--images", photos, "--index", index);
        Assert.Equal(0, code);
        Assert.Contains("0 new, 0 changed, 0 moved, 1 deleted, 0 skipped, 55 unchanged; 55 images indexed", stdout);

        (code, stdout, stderr) = Run("search", "--index", index, "--text", "A blackbird.", "-k", "3", "--json");
        Assert.True(code == 0, stderr);
        var hits = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(3, hits.Count);
        using var idx = Align.Search.ImageIndex.OpenExisting(index);
        var expected = idx.Search(Align.Search.SearchQuery.ForText("A blackbird."), new Align.Search.SearchOptions { K = 3 });
        Assert.Equal(expected.Select(h => h.Path), hits.Select(h => h.GetProperty("path").GetString()));
        Assert.Equal(expected[0].Score, hits[0].GetProperty("score").GetSingle(), 5);

        string image = expected[1].Path;
        (code, stdout, _) = Run("search", "--index", index, "--image", image, "--text", "a bird@0.3", "-k", "1", "--json");
        Assert.Equal(0, code);
        Assert.Equal(image, JsonDocument.Parse(stdout).RootElement[0].GetProperty("path").GetString());
    }

    [Fact]
    public void Bad_inputs_get_one_error_line()
    {
        string photos = fx.Photos(), index = fx.NewIndexDir();
        Assert.Equal(0, Run("index", "--model", fx.Model, "--images", photos, "--index", index).Code);
        var cases = new (string[] Args, string Expected)[]
        {
            (["index", "--model", fx.OtherModel, "--images", photos, "--index", index], "--reproject"),
            (["index", "--model", fx.Model, "--images", Path.Combine(photos, "missing"), "--index", index], "Image folder not found"),
            (["index", "--model", Path.Combine(fx.Root, "no-model"), "--images", photos, "--index", index], "Model folder not found"),
            (["index", "--model", fx.Model, "--images", photos, "--index", index, "--quantization", "fp8"], "fp16, fp32 or int8"),
            (["search", "--index", index], "at least one --text"),
            (["search", "--index", Path.Combine(fx.Root, "nowhere"), "--text", "x"], "No image index"),
            (["search", "--index", index, "--text", "x", "--before", "soon"], "not a date"),
            (["search", "--index", index, "--text", "x", "-k", "0"], "k must be >= 1"),
            (["search", "--index", index, "--image", Path.Combine(photos, "nope.png")], "nope.png"),
            (["search", "--index", index, "--like", Path.Combine(photos, "nope.png")], "is not an item"),
        };
        foreach (var (args, expected) in cases)
        {
            var (code, _, stderr) = Run(args);
            Assert.True(code == 1, $"{string.Join(' ', args)} -> {code}: {stderr}");
            Assert.StartsWith("error: ", stderr);
            Assert.Contains(expected, stderr);
            Assert.DoesNotContain("   at ", stderr);
        }
        // The refused runs changed nothing.
        using var idx = Align.Search.ImageIndex.OpenExisting(index);
        Assert.Equal(56, idx.Count);
    }

    [Fact]
    public void A_killed_index_run_leaves_whole_entries_and_the_rerun_finishes()
    {
        string photos = fx.Photos(), index = fx.NewIndexDir();
        var psi = CliProcess.StartInfo("index", "--model", fx.Model, "--images", photos, "--index", index, "--batch-size", "1");
        using var proc = Process.Start(psi)!;
        _ = proc.StandardOutput.ReadToEndAsync();
        _ = proc.StandardError.ReadToEndAsync();
        long committed = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(3) && !proc.HasExited)
        {
            committed = Count(index);
            if (committed >= 5) break;
            Thread.Sleep(50);
        }
        Assert.False(proc.HasExited, "the index run ended before it could be killed");
        proc.Kill(entireProcessTree: true); // SIGKILL: no cleanup runs
        proc.WaitForExit();
        committed = Count(index);
        Assert.InRange(committed, 5, 55);
        var (code, stdout, stderr) = Run("index", "--model", fx.Model, "--images", photos, "--index", index);
        Assert.True(code == 0, stderr);
        Assert.Contains($"{56 - committed} new, 0 changed, 0 moved, 0 deleted, 0 skipped, {committed} unchanged; 56 images indexed", stdout);
        using var db = Open(index);
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*), COUNT(DISTINCT path), COUNT(DISTINCT sha256) FROM items";
        using var r = cmd.ExecuteReader();
        r.Read();
        Assert.Equal((56L, 56L), (r.GetInt64(0), r.GetInt64(1)));
    }

    private static SqliteConnection Open(string index)
    {
        var db = new SqliteConnection($"Data Source={Path.Combine(index, "catalog.db")};Mode=ReadOnly;Pooling=False");
        db.Open();
        return db;
    }

    private static long Count(string index)
    {
        if (!File.Exists(Path.Combine(index, "catalog.db"))) return 0;
        try
        {
            using var db = Open(index);
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT COUNT(*) FROM items";
            return (long)cmd.ExecuteScalar()!;
        }
        catch (SqliteException) { return 0; } // created but no schema yet
    }
}
