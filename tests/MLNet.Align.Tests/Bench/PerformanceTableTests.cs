using MLNet.Align.Bench;

namespace MLNet.Align.Tests.Bench;

/// <summary>The README's performance table is the bench JSON's, rendered (issue 22): a figure edited by hand, or a new
/// JSON without its table, fails here. Regenerate with `mlnet-align-bench readme-table docs/bench-results.json`.</summary>
public class PerformanceTableTests
{
    [Fact]
    public void Readme_table_is_the_one_rendered_from_the_bench_json()
    {
        string root = RepoRoot.Path;
        string readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf(PerformanceTable.StartMarker, StringComparison.Ordinal);
        int end = readme.IndexOf(PerformanceTable.EndMarker, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "README.md lacks the performance-table markers");
        string inReadme = readme[start..(end + PerformanceTable.EndMarker.Length)] + "\n";
        string rendered = PerformanceTable.Render(File.ReadAllText(Path.Combine(root, "docs", "bench-results.json")));
        Assert.Equal(rendered, inReadme);
    }

    [Fact]
    public void Targets_are_judged_on_the_median_and_a_miss_is_marked()
    {
        string Json(double median) => $$"""
            { "runs": { "full": { "command": "bench ...", "note": "one run", "result": {
              "rounds": 3, "images": 800, "captions": 800,
              "training": { "threads_1": { "threads": 1, "pooled": {
                "ours_steps_per_s": { "min": 30, "median": 31, "max": 32, "n": 3 },
                "pytorch_steps_per_s_openblas_env_as_set": { "min": 20, "median": 21, "max": 22, "n": 3 },
                "pytorch_steps_per_s_openblas_env_unset": { "min": 25, "median": 26, "max": 27, "n": 3 },
                "ratio_vs_fastest_fair_peer": { "min": 1.05, "median": {{median}}, "max": 1.3, "n": 3, "target": ">= 1.2" },
                "ratio_trainer_vs_bare_loop": { "min": 0.95, "median": 0.96, "max": 0.97, "n": 3 } } } } } } } }
            """;
        string met = PerformanceTable.Render(Json(1.21));
        Assert.Contains("| 1.05 / 1.21 / 1.30 | >= 1.2: met |", met);
        Assert.Contains("as set (21/s) and unset (26/s)", met);
        string missed = PerformanceTable.Render(Json(1.12));
        Assert.Contains("| 1.05 / 1.12 / 1.30 | >= 1.2: **missed** (1.12) |", missed);
        Assert.Throws<InvalidDataException>(() => PerformanceTable.Render("""{ "runs": {} }"""));
        Assert.Throws<InvalidDataException>(() => PerformanceTable.Render("""{ "runs": { "full": { "command": "x", "note": "y", "result": { "rounds": 3, "training": { "threads_1": { "threads": 1, "pooled": {} } } } } } }"""));
    }

    [Fact]
    public void Another_run_with_image_encoding_gets_its_own_rows_and_note()
    {
        static string Stat(double median, string? target = null)
            => $$"""{ "min": {{median - 0.01}}, "median": {{median}}, "max": {{median + 0.01}}, "n": 3{{(target is null ? "" : $", \"target\": \"{target}\"")}} }""";
        string images = $$"""
            "rounds": 3, "images": 800, "image_encoding": { "mean_cosine_ours_vs_mlnet": 0.999,
              "images_per_s": { "embed": {{Stat(48)}}, "mlnet": {{Stat(31)}}, "raw_ort_parallel": {{Stat(51)}}, "ours": {{Stat(49)}}, "ours_serial": {{Stat(41)}}, "raw_ort_parallel_decoding": {{Stat(50)}} },
              "ratio_embed_vs_mlnet": {{Stat(1.52, ">= 1.5")}}, "ratio_embed_vs_raw_ort_parallel": {{Stat(0.94, ">= 0.9")}},
              "ratio_embed_vs_raw_ort_parallel_decoding": {{Stat(0.96)}}, "ratio_ours_vs_mlnet": {{Stat(1.55, ">= 1.0")}},
              "ratio_ours_vs_raw_ort_parallel": {{Stat(0.93, ">= 0.9")}}, "ratio_ours_parallel_vs_ours_serial": {{Stat(1.18)}} }
            """;
        string json = $$"""
            { "runs": {
              "full": { "command": "bench --suites text", "note": "the full run", "result": { "rounds": 3, "captions": 10,
                "text_encoding": { "sentences_per_s": { "ours": {{Stat(900)}} }, "ratio_ours_vs_package": {{Stat(2.3)}} } } },
              "demo-images": { "command": "bench --suites encode --pairs demo.tsv", "note": "the demo's images", "result": { {{images}} } } } }
            """;
        string table = PerformanceTable.Render(json);
        Assert.Contains("Run `demo-images`: the demo's images. Command:", table);
        Assert.Contains("    bench --suites encode --pairs demo.tsv", table);
        Assert.Contains("800 real images, pairs file to written fp16 store (48 images/s)", table);
        Assert.Contains("| 1.51 / 1.52 / 1.53 | >= 1.5: met |", table);
        Assert.Contains("nothing overlapped (50 images/s) | 0.95 / 0.96 / 0.97 |  |", table);
        Assert.True(table.IndexOf("MiniLM sentences/s", StringComparison.Ordinal) < table.IndexOf("Run `demo-images`", StringComparison.Ordinal));
        Assert.DoesNotContain("Run `full`", table);
    }
}
