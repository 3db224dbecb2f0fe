using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MLNet.Align.Search;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// <c>mlnet-align search --index DIR (--text "..." | --image FILE | --like PATH)... [-k 10] [--folder P] [--after D]
/// [--before D] [--within X] [--json]</c>: the best images of an index for a text, an image, an indexed item or a
/// weighted mix of them. The model is the one the index records (or <c>--model</c>).
/// </summary>
public sealed class SearchCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var index = new Option<string>("--index") { Description = "Index folder (from 'index').", Required = true };
        var model = new Option<string?>("--model") { Description = "Aligned-model bundle (default: the one recorded when the index was built)." };
        var text = new Option<string[]>("--text") { Description = "Text query part (repeatable), e.g. \"a dog on a beach\"; weight with TEXT@W, e.g. \"at night@0.5\"." };
        var image = new Option<string[]>("--image") { Description = "Image file query part (repeatable; FILE@W for a weight)." };
        var like = new Option<string[]>("--like") { Description = "An indexed item's path as a query part (repeatable; PATH@W)." };
        var k = new Option<int>("-k", "--top") { Description = "Results wanted.", DefaultValueFactory = _ => 10 };
        var folder = new Option<string?>("--folder") { Description = "Only images under this folder." };
        var after = new Option<string?>("--after") { Description = "Only images last written at or after this date (yyyy-MM-dd or ISO 8601)." };
        var before = new Option<string?>("--before") { Description = "Only images last written before this date." };
        var within = new Option<float?>("--within") { Description = "Relative cut-off: only hits within this score of the best (e.g. 0.05)." };
        var exact = new Option<bool>("--exact") { Description = "Score every image (no HNSW)." };
        var json = new Option<bool>("--json") { Description = "Print a JSON array of { \"path\", \"score\" }." };
        var backend = IndexCommand.BackendOption();
        var connection = IndexCommand.ConnectionOption();
        var cmd = new Command("search", "Search an image index by text, image or example item.") { index, model, text, image, like, k, folder, after, before, within, exact, json, backend, connection };
        cmd.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            var query = new SearchQuery();
            foreach (var t in parse.GetValue(text) ?? []) { var (v, w) = Weighted(t, "--text"); query.AndText(v, w); }
            foreach (var t in parse.GetValue(image) ?? []) { var (v, w) = Weighted(t, "--image"); query.AndImage(v, w); }
            foreach (var t in parse.GetValue(like) ?? []) { var (v, w) = Weighted(t, "--like"); query.AndItem(v, w); }
            if (query.Parts.Count == 0) throw new ArgumentException("Give at least one --text, --image or --like.");
            var options = new SearchOptions
            {
                K = parse.GetValue(k), Folder = parse.GetValue(folder), WithinOfBest = parse.GetValue(within), Exact = parse.GetValue(exact),
                After = Date(parse.GetValue(after), "--after"), Before = Date(parse.GetValue(before), "--before"),
            };
            string dir = parse.GetValue(index)!;
            using var idx = ImageIndex.OpenExisting(dir, parse.GetValue(model));
            using var store = IndexCommand.Postgres(parse.GetValue(backend)!, parse.GetValue(connection), idx.Dimension);
            if (store?.SyncState() is { } state && state.Generation != idx.Generation)
                Console.Error.WriteLine($"warning: the PostgreSQL table is at index generation {state.Generation}, the index at {idx.Generation}: run 'index --backend postgres' to bring it in step.");
            var hits = store is null ? idx.Search(query, options) : store.Search(idx.Embed(query), options);
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(hits.Select(h => new { path = h.Path, score = h.Score }), new JsonSerializerOptions { WriteIndented = true }));
            else
            {
                string how = store is not null ? $"PostgreSQL {store.Table}" : idx.UsesApproximateIndex && !options.Exact ? "HNSW" : "exact";
                Console.WriteLine($"{query} ({idx.Count:N0} images, {how}):");
                int rank = 1;
                foreach (var h in hits) Console.WriteLine($"{rank++,3}. {h.Score,7:F4}  {h.Path}");
                if (hits.Count == 0) Console.WriteLine("  no image matches the filters");
            }
            return 0;
        })));
        return cmd;
    }

    /// <summary>"value@weight" -> (value, weight); a trailing "@number" is a weight, anything else is part of the value.</summary>
    internal static (string Value, float Weight) Weighted(string s, string option)
    {
        int at = s.LastIndexOf('@');
        if (at > 0 && float.TryParse(s[(at + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out float w))
        {
            if (!float.IsFinite(w)) throw new ArgumentException($"{option} '{s}': the weight must be a finite number.");
            return (s[..at], w);
        }
        return (s, 1f);
    }

    internal static DateTimeOffset? Date(string? s, string option)
    {
        if (s is null) return null;
        if (DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d)) return d;
        throw new ArgumentException($"{option} '{s}' is not a date (use yyyy-MM-dd or ISO 8601, e.g. 2024-06-01 or 2024-06-01T18:00:00Z).");
    }
}
