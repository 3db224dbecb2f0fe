using System.CommandLine;
using MLNet.Align.Cli.Commands;

namespace MLNet.Align.Tests.Cli;

/// <summary>`bench` fails on bad input with one error line naming the item, exit 1, and no JSON written.</summary>
[Collection("cli-console")]
public class BenchCommandTests
{
    private static (int Code, string Out, string Error) Run(params string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        try { return (new RootCommand { new BenchCommand().Build() }.Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldError); }
    }

    [Fact]
    public void BadInputGivesOneErrorLineNamingTheItemAndWritesNoResults()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mlnet-align-bench-bad-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string output = Path.Combine(dir, "bench.json");
            string missing = Path.Combine(dir, "no-such-pairs.tsv");
            var cases = new (string[] Args, string Names)[]
            {
                (["bench", "--pairs", missing, "--suites", "train", "--out", output], "no-such-pairs.tsv"),
                (["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "train,speed", "--out", output], "speed"),
                (["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "train", "--train-modes", "tokn", "--out", output], "tokn"),
                (["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "store", "--store-sizes", "10000,1e6", "--out", output], "1e6"),
                (["bench", "--pairs", FixtureFeatures.PairsFile, "--suites", "train", "--rounds", "0", "--out", output], "--rounds"),
            };
            foreach (var (args, names) in cases)
            {
                var (code, _, stderr) = Run(args);
                Assert.True(code == 1, $"{string.Join(' ', args)} -> {code}: {stderr}");
                Assert.StartsWith("error: ", stderr);
                Assert.Contains(names, stderr);
                Assert.DoesNotContain("   at ", stderr); // a message, not a stack trace
                Assert.False(File.Exists(output), "no results file after a failed run");
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
