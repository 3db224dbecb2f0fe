using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;

namespace MLNet.Align.Search;

/// <summary>Where <see cref="SearchServiceCollectionExtensions.AddImageSearch"/> finds the index and its model.</summary>
public sealed class ImageSearchOptions
{
    /// <summary>The index folder (built by <see cref="ImageIndex.Update(IndexSource, IProgress{IndexProgress}, CancellationToken)"/> or <c>mlnet-align index</c>).</summary>
    public string IndexDirectory { get; set; } = "";
    /// <summary>The aligned-model bundle the index was built with.</summary>
    public string ModelDirectory { get; set; } = "";
    /// <summary>Index options (search-time settings).</summary>
    public ImageIndexOptions Index { get; set; } = new();
}

/// <summary>ASP.NET Core registration of an image index.</summary>
public static class SearchServiceCollectionExtensions
{
    /// <summary>Registers the <see cref="ImageIndex"/> as a singleton (opened on first use, disposed with the container)
    /// and the model's text and image sides as <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>s.</summary>
    public static IServiceCollection AddImageSearch(this IServiceCollection services, Action<ImageSearchOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new ImageSearchOptions();
        configure(options);
        if (string.IsNullOrWhiteSpace(options.IndexDirectory)) throw new ArgumentException("ImageSearchOptions.IndexDirectory is required.");
        if (string.IsNullOrWhiteSpace(options.ModelDirectory)) throw new ArgumentException("ImageSearchOptions.ModelDirectory is required.");
        services.AddSingleton(options);
        services.AddSingleton(_ => ImageIndex.Open(options.IndexDirectory, options.ModelDirectory, options.Index));
        services.AddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(sp => new AlignedTextEmbeddingGenerator(sp.GetRequiredService<ImageIndex>().Model));
        services.AddSingleton<IEmbeddingGenerator<DataContent, Embedding<float>>>(sp => new AlignedImageEmbeddingGenerator(sp.GetRequiredService<ImageIndex>().Model));
        return services;
    }
}

/// <summary>The search API and page as minimal-API endpoints.</summary>
public static class SearchEndpoints
{
    /// <summary>Largest upload accepted by POST /api/search (bytes).</summary>
    public const long MaxUploadBytes = 32L << 20;

    /// <summary>Maps, under <paramref name="prefix"/>: <c>GET /</c> (the search page), <c>GET api/search?q=&amp;k=&amp;folder=&amp;after=&amp;before=&amp;within=</c>,
    /// <c>POST api/search</c> (multipart: an <c>image</c> file, optional <c>q</c> text added to it, <c>k</c>),
    /// <c>GET api/thumbnail/{id}?size=</c> (JPEG; only indexed items) and <c>GET api/info</c>. Results are JSON arrays of
    /// <c>{ id, path, score, modified, thumbnail }</c>; a bad query answers 400 with <c>{ error }</c>.</summary>
    public static IEndpointRouteBuilder MapImageSearch(this IEndpointRouteBuilder app, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(app);
        var g = app.MapGroup(prefix);
        g.MapGet("/", () => Results.Content(Page.Value, "text/html; charset=utf-8"));
        g.MapGet("/api/info", (ImageIndex index) => Results.Json(new
        {
            items = index.Count, model = index.Model.Name, dimension = index.Dimension, fingerprint = index.ModelFingerprint,
            approximate = index.UsesApproximateIndex,
        }));
        g.MapGet("/api/search", (ImageIndex index, string? q, int? k, string? folder, DateTimeOffset? after, DateTimeOffset? before, float? within) =>
        {
            if (string.IsNullOrWhiteSpace(q)) return Results.BadRequest(new { error = "q (the text to search for) is required." });
            return Answer(index, SearchQuery.ForText(q), k, folder, after, before, within);
        });
        g.MapPost("/api/search", async (ImageIndex index, HttpRequest request) =>
        {
            if (!request.HasFormContentType) return Results.BadRequest(new { error = "POST a multipart form with an 'image' file." });
            var form = await request.ReadFormAsync();
            var file = form.Files.GetFile("image");
            if (file is null || file.Length == 0) return Results.BadRequest(new { error = "The form has no 'image' file, or it is empty." });
            if (file.Length > MaxUploadBytes) return Results.BadRequest(new { error = $"The image is {file.Length:N0} bytes; the limit is {MaxUploadBytes:N0}." });
            using var ms = new MemoryStream();
            await file.CopyToAsync(ms);
            var query = SearchQuery.ForImageBytes(ms.ToArray());
            // q and k from the form, else from the query string (as GET takes them).
            string FormOrQuery(string name) => form[name].ToString() is { Length: > 0 } v ? v : request.Query[name].ToString();
            if (FormOrQuery("q") is { } text && !string.IsNullOrWhiteSpace(text)) query.AndText(text);
            int? k = null;
            if (FormOrQuery("k") is { Length: > 0 } kText)
            {
                if (!int.TryParse(kText, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var kk))
                    return Results.BadRequest(new { error = $"k must be a whole number of results; got '{kText}'." });
                k = kk;
            }
            return Answer(index, query, k, null, null, null, null);
        }).DisableAntiforgery();
        g.MapGet("/api/thumbnail/{id:long}", (ImageIndex index, long id, int? size) =>
        {
            if (index.PathOf(id) is not { } path) return Results.NotFound(new { error = $"No item {id} in the index." });
            int edge = Math.Clamp(size ?? 256, 16, 1024);
            try { return Results.File(Thumbnail(path, edge), "image/jpeg"); }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            { return Results.NotFound(new { error = $"The image of item {id} cannot be read: {e.Message}" }); }
        });
        return app;
    }

    private static IResult Answer(ImageIndex index, SearchQuery query, int? k, string? folder, DateTimeOffset? after, DateTimeOffset? before, float? within)
    {
        try
        {
            var hits = index.Search(query, new SearchOptions { K = k ?? 10, Folder = folder, After = after, Before = before, WithinOfBest = within });
            return Results.Json(hits.Select(h => new { id = h.Id, path = h.Path, score = h.Score, modified = h.Modified, thumbnail = $"api/thumbnail/{h.Id}" }));
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException)
        {
            return Results.BadRequest(new { error = e.Message });
        }
    }

    /// <summary>A JPEG of the image scaled to fit <paramref name="edge"/> pixels, upright.</summary>
    internal static byte[] Thumbnail(string path, int edge)
    {
        using var full = MLNet.Align.Encoders.ImageFileDecoder.Decode(path);
        float scale = Math.Min(1f, edge / (float)Math.Max(full.Width, full.Height));
        var info = new SKImageInfo(Math.Max(1, (int)(full.Width * scale)), Math.Max(1, (int)(full.Height * scale)), SKColorType.Rgba8888, SKAlphaType.Premul);
        using var small = full.Resize(info, SKFilterQuality.Medium) ?? throw new InvalidDataException($"Cannot scale {path}.");
        using var surface = SKSurface.Create(info);
        surface.Canvas.Clear(SKColors.White); // transparent cut-outs on white, as the encoder sees them
        surface.Canvas.DrawBitmap(small, 0, 0);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 85);
        return data.ToArray();
    }

    private static readonly Lazy<string> Page = new(() =>
    {
        using var s = typeof(SearchEndpoints).Assembly.GetManifestResourceStream("MLNet.Align.Search.index.html")
            ?? throw new InvalidOperationException("The search page resource is missing from the assembly.");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    });
}
