using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Search;
using MLNet.Align.Terminal;
using SkiaSharp;

namespace MLNet.Align.Demo;

/// <summary>One demo query and its top hits.</summary>
public sealed record DemoSearchQuery(string Query, IReadOnlyList<DemoSearchHit> Hits);

/// <summary>One hit (path relative to the demo's --out where it lies below it).</summary>
public sealed record DemoSearchHit(string Path, float Score);

/// <summary>The demo's search step: the held-out images indexed with the served model, the queries and their hits,
/// and text-to-image Recall@K through the index beside the same measure computed directly.</summary>
public sealed record DemoSearchSummary
{
    [JsonPropertyName("images")] public int Images { get; init; }
    [JsonPropertyName("index_seconds")] public double IndexSeconds { get; init; }
    [JsonPropertyName("contact_sheet")] public string ContactSheet { get; init; } = "";
    [JsonPropertyName("queries")] public IReadOnlyList<DemoSearchQuery> Queries { get; init; } = [];
    [JsonPropertyName("t2i_through_index")] public RecallAtK? ThroughIndex { get; init; }
    [JsonPropertyName("t2i_direct")] public RecallAtK? Direct { get; init; }
}

/// <summary>Step: index the held-out images with the served model (MLNet.Align.Search, as `mlnet-align index` does),
/// run five text queries and one image query, and draw them as a contact sheet (each query with its top 5 thumbnails
/// and scores).</summary>
internal static class DemoSearch
{
    /// <summary>Queries about what the demo's sources show (animals, food, clothes, vehicles, landscapes).</summary>
    public static readonly string[] TextQueries = ["a bird", "a red apple", "a car", "a pair of shoes", "a mountain landscape"];

    public static DemoSearchSummary Run(string outDir, string modelDir, AlignedModel model, StoredPairs heldOut, CancellationToken ct)
    {
        string indexDir = Path.Combine(outDir, "search-index");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var index = ImageIndex.Open(indexDir, modelDir);
        var paths = heldOut.UniqueImagePaths.Select(Path.GetFullPath).ToList();
        var plan = index.Plan(IndexSource.FromFiles(paths), ct);
        var result = CliProgress.Run("  indexing the held-out images", plan.ToEncode, p => index.Update(plan, new Progress<IndexProgress>(x => p.Report(x.Done)), ct), unit: "images");
        double seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"  search index: {result}");

        var queries = TextQueries.Select(q => (Label: $"\"{q}\"", Query: SearchQuery.ForText(q))).ToList();
        // The image query: a held-out image picked by a fixed rule (the middle one), which must come back first.
        string probe = paths[paths.Count / 2];
        queries.Add(($"image {Path.GetFileName(probe)}", SearchQuery.ForImage(probe)));
        var results = new List<DemoSearchQuery>();
        foreach (var (label, q) in queries)
        {
            var hits = index.Search(q, new SearchOptions { K = 5 });
            results.Add(new DemoSearchQuery(label, hits.Select(h => new DemoSearchHit(h.Path, h.Score)).ToList()));
            Console.WriteLine($"  {label,-32} " + string.Join("  ", hits.Take(3).Select(h => $"{h.Score:F3} {Path.GetFileName(h.Path)}")));
        }
        string sheet = Path.Combine(outDir, "search-contact-sheet.png");
        DrawContactSheet(results, sheet);

        // Text -> image Recall@K through the index against the same measure on the same vectors computed directly.
        var (through, direct) = Recall(index, model, heldOut);
        Console.WriteLine($"  text->image R@1/5/10 through the index {through.R1:P1} / {through.R5:P1} / {through.R10:P1}; computed directly {direct.R1:P1} / {direct.R5:P1} / {direct.R10:P1}");
        return new DemoSearchSummary
        {
            Images = index.Count, IndexSeconds = Math.Round(seconds, 1), ContactSheet = Path.GetFileName(sheet), Queries = results,
            ThroughIndex = through, Direct = direct,
        };
    }

    private static (RecallAtK Through, RecallAtK Direct) Recall(ImageIndex index, AlignedModel model, StoredPairs heldOut)
    {
        var texts = model.ProjectTexts(heldOut.Text!);
        var unique = heldOut.UniqueImagePaths.Select(Path.GetFullPath).ToList();
        int[] k = [1, 5, 10];
        var hitsAt = new int[k.Length];
        for (int i = 0; i < heldOut.Count; i++)
        {
            var q = texts.Row(i).ToArray();
            System.Numerics.Tensors.TensorPrimitives.Divide(q, System.Numerics.Tensors.TensorPrimitives.Norm(q), q);
            var top = index.Search(q, new SearchOptions { K = 10 }).Select(h => h.Path).ToList();
            int rank = top.IndexOf(unique[heldOut.ImageIds[i]]);
            for (int j = 0; j < k.Length; j++) if (rank >= 0 && rank < k[j]) hitsAt[j]++;
        }
        double n = heldOut.Count; // fractions in [0, 1], as the evaluator's
        var through = new RecallAtK { R1 = hitsAt[0] / n, R5 = hitsAt[1] / n, R10 = hitsAt[2] / n };
        var direct = ProjectorEvaluation.Retrieval(model, heldOut.UniqueImageEmbeddings(), heldOut.Text!, heldOut.ImageIds).TextToImage;
        return (through, direct);
    }

    /// <summary>Each query on a row: its label, then its hits as 128-pixel thumbnails with their scores.</summary>
    internal static void DrawContactSheet(IReadOnlyList<DemoSearchQuery> queries, string path)
    {
        const int thumb = 128, pad = 10, label = 250, rowH = thumb + 30;
        int cols = queries.Max(q => q.Hits.Count);
        var info = new SKImageInfo(label + cols * (thumb + pad) + pad, queries.Count * (rowH + pad) + pad);
        using var surface = SKSurface.Create(info);
        var c = surface.Canvas;
        c.Clear(SKColors.White);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 15 };
        using var grey = new SKPaint { Color = new SKColor(90, 90, 90), IsAntialias = true, TextSize = 12 };
        using var centred = new SKPaint { Color = new SKColor(90, 90, 90), IsAntialias = true, TextSize = 12, TextAlign = SKTextAlign.Center };
        for (int r = 0; r < queries.Count; r++)
        {
            float y = pad + r * (rowH + pad);
            c.DrawText(queries[r].Query.Length > 30 ? queries[r].Query[..29] + "…" : queries[r].Query, pad, y + thumb / 2f, ink);
            for (int i = 0; i < queries[r].Hits.Count; i++)
            {
                var hit = queries[r].Hits[i];
                float x = label + i * (thumb + pad);
                try
                {
                    using var bmp = MLNet.Align.Encoders.ImageFileDecoder.Decode(hit.Path);
                    float s = Math.Min(thumb / (float)bmp.Width, thumb / (float)bmp.Height);
                    var dst = SKRect.Create(x + (thumb - bmp.Width * s) / 2, y + (thumb - bmp.Height * s) / 2, bmp.Width * s, bmp.Height * s);
                    c.DrawBitmap(bmp, dst);
                }
                catch (Exception e) when (e is IOException or InvalidDataException) { c.DrawText("(unreadable)", x + 10, y + thumb / 2f, grey); }
                c.DrawText($"{hit.Score:F3}", x + thumb / 2f, y + thumb + 18, centred);
            }
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, s => data.SaveTo(s));
    }
}
