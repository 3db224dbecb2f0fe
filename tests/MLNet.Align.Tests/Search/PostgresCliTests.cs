using System.CommandLine;
using System.Text.Json;
using MLNet.Align.Cli.Commands;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Search;

/// <summary>`index --backend postgres` and `search --backend postgres` against the real pgvector server: the same
/// answers as the embedded backend, and the delta after files change.</summary>
/// Console capture needs the "cli-console" collection, so this class starts its own server (a class fixture).
[Collection("cli-console")]
public class PostgresCliTests(PgliteServer server, SearchFixture fx, ITestOutputHelper output) : IClassFixture<SearchFixture>, IClassFixture<PgliteServer>
{
    private (int Code, string Out, string Error) Run(params string[] args)
        => CliConsole.Run(new RootCommand { new IndexCommand().Build(), new SearchCommand().Build() }, output, args);

    [Fact]
    public void Postgres_backend_answers_as_the_embedded_one_and_follows_changes()
    {
        string photos = fx.Photos(), index = fx.NewIndexDir();
        var (code, stdout, stderr) = Run("index", "--model", fx.Model, "--images", photos, "--index", index, "--backend", "postgres", "--connection", server.ConnectionString);
        Assert.True(code == 0, stderr);
        Assert.Contains("56 images, in step with generation 1", stdout);
        string[] Search(string backend)
        {
            var (c, so, se) = Run(["search", "--index", index, "--text", "A blackbird.", "-k", "5", "--json", "--backend", backend, "--connection", server.ConnectionString]);
            Assert.True(c == 0, se);
            return JsonDocument.Parse(so).RootElement.EnumerateArray().Select(h => h.GetProperty("path").GetString()!).ToArray();
        }
        Assert.Equal(Search("embedded"), Search("postgres"));

        File.Delete(Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First());
        (code, stdout, stderr) = Run("index", "--model", fx.Model, "--images", photos, "--index", index, "--backend", "postgres", "--connection", server.ConnectionString);
        Assert.True(code == 0, stderr);
        Assert.Contains("1 rows written or deleted, 55 images", stdout);
        Assert.Equal(Search("embedded"), Search("postgres"));

        (code, _, stderr) = Run("search", "--index", index, "--text", "x", "--backend", "postgres");
        Assert.Equal(1, code);
        Assert.Contains("--backend postgres needs --connection", stderr);
        (code, _, stderr) = Run("search", "--index", index, "--text", "x", "--backend", "mysql");
        Assert.Equal(1, code);
        Assert.Contains("--backend must be embedded or postgres", stderr);
    }
}
