using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MLNet.Align.Embeddings;

/// <summary>
/// Reads single rows of a store's shards in place (positioned reads, no memory map), for visiting orders that jump
/// between shards (a full permutation): memory is O(open shards' row tables), not O(decoded shards). Per shard it keeps
/// the header and the row -> image slot table (4 bytes per row; token lengths too when tokens are read); rows are
/// read on demand and widened from fp16. The file bytes come from the OS page cache when the store fits in it.
/// Not thread-safe (one per stream).
/// </summary>
internal sealed class StoreRowReader : IDisposable
{
    /// <summary>File handles kept open at once; further shards are reopened when needed again (tables are kept).</summary>
    private const int MaxOpenHandles = 256;

    private sealed class Shard
    {
        public required string Path;
        public required ShardFile.Header Header;
        public required int[] Slots;
        public int[]? ImageTokenLengths, TextTokenLengths;
        public SafeFileHandle? Handle;
    }

    private readonly EmbeddingStore _store;
    private readonly bool _tokens;
    private readonly Shard?[] _shards;
    private readonly Queue<int> _open = new();
    private Half[] _half = new Half[1024];

    public StoreRowReader(EmbeddingStore store, bool tokens)
    {
        _store = store;
        _tokens = tokens;
        _shards = new Shard?[store.Shards.Count];
    }

    private Shard Get(int k)
    {
        var s = _shards[k];
        if (s?.Handle is not null) return s;
        string path = System.IO.Path.Combine(_store.Directory, _store.Shards[k].File);
        // Row reads verify a shard against the manifest on its first open, as whole-shard loads do (issue 19).
        if (s is null) _store.VerifyShard(k);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            if (s is null)
            {
                var h = ShardFile.ReadHeader(handle, path);
                if (h.Rows != _store.Shards[k].Rows || !h.HasText || h.ImageDim != _store.Manifest.ImageEncoder.Dimension)
                    throw new InvalidDataException($"{path}: the shard holds {h.Rows} rows of {h.ImageDim}-d images{(h.HasText ? "" : " without text")}, the manifest records {_store.Shards[k].Rows} rows of {_store.Manifest.ImageEncoder.Dimension}-d image-text pairs.");
                if (_tokens && !(h.HasImageTokens && h.HasTextTokens))
                    throw new InvalidOperationException($"{path}: this store holds no tokens (embed with tokens to store them).");
                s = new Shard
                {
                    Path = path, Header = h, Slots = ShardFile.ReadInts(handle, h.SlotOffset, h.Rows, path),
                    ImageTokenLengths = _tokens ? ShardFile.ReadInts(handle, h.ImageTokenLengthsOffset, h.Images, path) : null,
                    TextTokenLengths = _tokens ? ShardFile.ReadInts(handle, h.TextTokenLengthsOffset, h.Rows, path) : null,
                };
                foreach (int slot in s.Slots)
                    if ((uint)slot >= (uint)h.Images) throw new InvalidDataException($"{path}: a row points at image slot {slot}, the shard holds {h.Images} images.");
                _shards[k] = s;
            }
            s.Handle = handle;
        }
        catch { handle.Dispose(); throw; }
        _open.Enqueue(k);
        if (_open.Count > MaxOpenHandles)
        {
            int old = _open.Dequeue();
            _shards[old]!.Handle!.Dispose();
            _shards[old]!.Handle = null;
        }
        return s;
    }

    /// <summary>Pooled image and text embeddings of local row <paramref name="row"/> of shard <paramref name="k"/>.</summary>
    public void ReadPooled(int k, int row, Span<float> image, Span<float> text)
    {
        var s = Get(k);
        var h = s.Header;
        int slot = s.Slots[row];
        ReadFloats(s, h.ImagePooledOffset + (long)h.ElementSize * slot * h.ImageDim, image[..h.ImageDim]);
        ReadFloats(s, h.TextPooledOffset + (long)h.ElementSize * row * h.TextDim, text[..h.TextDim]);
    }

    /// <summary>Image tokens [len, dim] and text tokens [len, dim] of one row (each trimmed to its length).</summary>
    public ((float[] Data, int Length, int Dim) Image, (float[] Data, int Length, int Dim) Text) ReadTokens(int k, int row)
    {
        var s = Get(k);
        var h = s.Header;
        int slot = s.Slots[row];
        int il = s.ImageTokenLengths![slot], tl = s.TextTokenLengths![row];
        if ((uint)il > (uint)h.ImageTokenCount || (uint)tl > (uint)h.TextTokenCount)
            throw new InvalidDataException($"{s.Path}: token length {il} / {tl} exceeds the shard's {h.ImageTokenCount} / {h.TextTokenCount}.");
        var image = new float[il * h.ImageTokenDim];
        var text = new float[tl * h.TextTokenDim];
        ReadFloats(s, h.ImageTokensOffset + (long)h.ElementSize * slot * h.ImageTokenCount * h.ImageTokenDim, image);
        ReadFloats(s, h.TextTokensOffset + (long)h.ElementSize * row * h.TextTokenCount * h.TextTokenDim, text);
        return ((image, il, h.ImageTokenDim), (text, tl, h.TextTokenDim));
    }

    private void ReadFloats(Shard s, long offset, Span<float> into)
    {
        if (s.Header.DType == EmbeddingDType.Float32) ShardFile.ReadExactly(s.Handle!, offset, MemoryMarshal.AsBytes(into), s.Path);
        else
        {
            if (_half.Length < into.Length) _half = new Half[into.Length];
            var half = _half.AsSpan(0, into.Length);
            ShardFile.ReadExactly(s.Handle!, offset, MemoryMarshal.AsBytes(half), s.Path);
            TensorPrimitives.ConvertToSingle(half, into);
        }
        // A verified shard can still hold a NaN written by a bad encoder run: never hand it to training or evaluation.
        if (!TensorPrimitives.IsFiniteAll(into))
            throw new InvalidDataException($"The embedding store in {_store.Directory} holds a non-finite value in {s.Path} (byte offset {offset}): " +
                "an encoder produced NaN or infinity; re-embed into a new folder.");
    }

    public void Dispose()
    {
        foreach (var s in _shards) s?.Handle?.Dispose();
    }
}
