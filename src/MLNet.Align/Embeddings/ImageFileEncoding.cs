using System.Diagnostics;
using MLNet.Align.Encoders;

namespace MLNet.Align.Embeddings;

/// <summary>One batch of <see cref="ImageFileEncoding.Encode"/>: the pooled embedding of each file that encoded, or the
/// reason it could not be.</summary>
/// <param name="Start">Index of the batch's first file in the input list.</param>
/// <param name="Pooled">Per file: its pooled encoder embedding [encoder dimension], or null when it failed.</param>
/// <param name="Errors">Per file: null, or why it could not be encoded (missing, truncated, not an image, over the pixel budget).</param>
/// <param name="Seconds">Seconds spent in encoder calls for this batch.</param>
public sealed record ImageFileBatch(int Start, float[]?[] Pooled, string?[] Errors, double Seconds)
{
    /// <summary>Files in the batch.</summary>
    public int Count => Pooled.Length;
}

/// <summary>
/// The encoder's parallel path for a list of image files, shared by the embedding pipeline and the search index:
/// up to <c>concurrency</c> batches in flight, each decoding its own images so that decoding overlaps another batch's
/// inference, results in input order. A batch with a bad image is retried one image at a time, so one bad file never
/// costs its neighbours.
/// </summary>
public static class ImageFileEncoding
{
    /// <summary>Encodes <paramref name="paths"/> in batches of <paramref name="batchSize"/>, yielding each batch in order.</summary>
    /// <param name="encoder">The frozen image encoder (thread-safe for concurrent calls, as <see cref="OnnxImageEncoder"/>).</param>
    /// <param name="paths">Image files.</param>
    /// <param name="batchSize">Files per encoder call (&gt;= 1).</param>
    /// <param name="concurrency">Batches in flight; 0 = what the encoder serves (<see cref="OnnxImageEncoder.Parallelism"/>, else 1).</param>
    /// <param name="cancellationToken">Cancels the in-flight batches; they are awaited before the enumeration ends.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> &lt; 1 or <paramref name="concurrency"/> &lt; 0.</exception>
    public static IEnumerable<ImageFileBatch> Encode(IImageEncoder encoder, IReadOnlyList<string> paths, int batchSize = 32,
        int concurrency = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(paths);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be >= 1.");
        if (concurrency < 0) throw new ArgumentOutOfRangeException(nameof(concurrency), concurrency, "Concurrency must be >= 0 (0 = automatic).");
        int inFlight = EmbeddingPipeline.ResolveConcurrency(new EmbeddingPipelineOptions { Concurrency = concurrency }, encoder);
        int dim = encoder.Identity.Dimension;
        return Run();

        IEnumerable<ImageFileBatch> Run()
        {
            var items = Enumerable.Range(0, (paths.Count + batchSize - 1) / batchSize).Select(b =>
            {
                int start = b * batchSize;
                var batch = paths.Skip(start).Take(batchSize).ToList();
                return OrderedWindow.Item<EmbeddingPipeline.ImageBatchResult>.Work(ct =>
                    EmbeddingPipeline.EncodeImages(0, start, batch, encoder, dim, false, ct));
            });
            foreach (var r in OrderedWindow.Run(items, inFlight, cancellationToken))
                yield return new ImageFileBatch(r.Start, r.Items.Select(e => e?.Pooled.Data).ToArray(), r.Errors,
                    r.Ticks / (double)Stopwatch.Frequency);
        }
    }
}
