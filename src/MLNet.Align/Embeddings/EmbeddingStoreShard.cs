using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Numerics.Tensors;

namespace MLNet.Align.Embeddings;

/// <summary>Metadata of one stored row (pair), kept inside its shard file.</summary>
/// <param name="Index">0-based data-row index in the pairs file (the pair's id in the input).</param>
/// <param name="Line">1-based line in the pairs file.</param>
/// <param name="Image">Image path as written in the pairs file.</param>
/// <param name="Caption">Caption, or null in an image-only store.</param>
/// <param name="Extra">Extra column values, in the manifest's <c>extraColumns</c> order.</param>
public sealed record StoredRowInfo(
    [property: JsonPropertyName("i")] int Index,
    [property: JsonPropertyName("l")] int Line,
    [property: JsonPropertyName("img")] string Image,
    [property: JsonPropertyName("cap")] string? Caption,
    [property: JsonPropertyName("x")] IReadOnlyList<string> Extra);

/// <summary>
/// The content of one shard, decoded to fp32. Images are stored once per shard even when several rows (captions)
/// share them: <see cref="ImageSlot"/> maps a row to its image.
/// </summary>
internal sealed class ShardData
{
    public required int Rows;
    public required int Images;
    public required int[] ImageSlot;            // [Rows] -> [0, Images)
    public required float[] ImagePooled;        // [Images, Di]
    public required int ImageDim;
    public float[]? TextPooled;                 // [Rows, Dt]
    public int TextDim;
    public float[]? ImageTokens;                // [Images, T, dti]
    public int[]? ImageTokenLengths;            // [Images]
    public int ImageTokenCount, ImageTokenDim;
    public float[]? TextTokens;                 // [Rows, L, dtt]
    public int[]? TextTokenLengths;             // [Rows]
    public int TextTokenCount, TextTokenDim;
    public StoredRowInfo[]? Meta;               // [Rows]
}

/// <summary>
/// Binary shard file (little-endian). Header (56 bytes): magic "MLAE", format version, dtype (0 fp32, 1 fp16), rows n,
/// images m, flags (1 text pooled, 2 image tokens, 4 text tokens), Di, Dt, T, dti, L, dtt, metadata byte count (int64).
/// Then: image slot int32[n]; image pooled [m, Di]; text pooled [n, Dt]; image tokens [m, T, dti] + lengths int32[m];
/// text tokens [n, L, dtt] + lengths int32[n]; row metadata as UTF-8 JSON. Floats in the store dtype.
/// The file holds no position-dependent data, so a shard can be moved into a merged store unchanged.
/// </summary>
internal static class ShardFile
{
    public const uint Magic = 0x45414C4D; // "MLAE" little-endian
    public const int Version = 1;
    private const int HeaderBytes = 56;

    internal sealed record Header(EmbeddingDType DType, int Rows, int Images, int Flags, int ImageDim, int TextDim,
        int ImageTokenCount, int ImageTokenDim, int TextTokenCount, int TextTokenDim, long MetaBytes)
    {
        public int ElementSize => DType == EmbeddingDType.Float16 ? 2 : 4;
        public bool HasText => (Flags & 1) != 0;
        public bool HasImageTokens => (Flags & 2) != 0;
        public bool HasTextTokens => (Flags & 4) != 0;
        public long SlotOffset => HeaderBytes;
        public long ImagePooledOffset => SlotOffset + 4L * Rows;
        public long TextPooledOffset => ImagePooledOffset + (long)ElementSize * Images * ImageDim;
        public long ImageTokensOffset => TextPooledOffset + (HasText ? (long)ElementSize * Rows * TextDim : 0);
        public long ImageTokenLengthsOffset => ImageTokensOffset + (HasImageTokens ? (long)ElementSize * Images * ImageTokenCount * ImageTokenDim : 0);
        public long TextTokensOffset => ImageTokenLengthsOffset + (HasImageTokens ? 4L * Images : 0);
        public long TextTokenLengthsOffset => TextTokensOffset + (HasTextTokens ? (long)ElementSize * Rows * TextTokenCount * TextTokenDim : 0);
        public long MetaOffset => TextTokenLengthsOffset + (HasTextTokens ? 4L * Rows : 0);
        public long TotalBytes => MetaOffset + MetaBytes;
    }

    /// <summary>Writes <paramref name="d"/> to <paramref name="path"/> (the caller renames it into place) and
    /// returns its size and SHA-256.</summary>
    public static (long Bytes, string Sha256) Write(string path, ShardData d, EmbeddingDType dtype)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("The embedding store requires a little-endian machine.");
        byte[] meta = JsonSerializer.SerializeToUtf8Bytes(d.Meta ?? [], StoreJson.Compact);
        int flags = (d.TextPooled != null ? 1 : 0) | (d.ImageTokens != null ? 2 : 0) | (d.TextTokens != null ? 4 : 0);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long bytes = 0;
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
        {
            void Put(ReadOnlySpan<byte> b) { fs.Write(b); hash.AppendData(b); bytes += b.Length; }
            void PutFloats(ReadOnlySpan<float> f)
            {
                if (dtype == EmbeddingDType.Float32) { Put(MemoryMarshal.AsBytes(f)); return; }
                const int chunk = 1 << 16;
                var half = new Half[Math.Min(chunk, Math.Max(1, f.Length))];
                for (int at = 0; at < f.Length; at += chunk)
                {
                    var src = f.Slice(at, Math.Min(chunk, f.Length - at));
                    TensorPrimitives.ConvertToHalf(src, half);
                    Put(MemoryMarshal.AsBytes(half.AsSpan(0, src.Length)));
                }
            }
            Span<byte> h = stackalloc byte[HeaderBytes];
            BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
            int[] ints = [Version, dtype == EmbeddingDType.Float16 ? 1 : 0, d.Rows, d.Images, flags, d.ImageDim, d.TextDim,
                d.ImageTokenCount, d.ImageTokenDim, d.TextTokenCount, d.TextTokenDim];
            for (int i = 0; i < ints.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(h[(4 + 4 * i)..], ints[i]);
            BinaryPrimitives.WriteInt64LittleEndian(h[48..], meta.Length);
            Put(h);
            Put(MemoryMarshal.AsBytes(d.ImageSlot.AsSpan()));
            PutFloats(d.ImagePooled);
            if (d.TextPooled != null) PutFloats(d.TextPooled);
            if (d.ImageTokens != null) { PutFloats(d.ImageTokens); Put(MemoryMarshal.AsBytes(d.ImageTokenLengths!.AsSpan())); }
            if (d.TextTokens != null) { PutFloats(d.TextTokens); Put(MemoryMarshal.AsBytes(d.TextTokenLengths!.AsSpan())); }
            Put(meta);
            fs.Flush(flushToDisk: true);
        }
        return (bytes, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    public static string ComputeSha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    /// <summary>Reads the parts of a shard that are asked for; everything else is skipped on disk.</summary>
    public static ShardData Read(string path, bool textPooled = true, bool imageTokens = false, bool textTokens = false, bool meta = false)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        var h = ReadHeader(handle, path);
        var d = new ShardData
        {
            Rows = h.Rows, Images = h.Images, ImageDim = h.ImageDim, TextDim = h.TextDim,
            ImageSlot = ReadInts(handle, h.SlotOffset, h.Rows, path),
            ImagePooled = ReadFloats(handle, h.ImagePooledOffset, (long)h.Images * h.ImageDim, h.DType, path),
            ImageTokenCount = h.ImageTokenCount, ImageTokenDim = h.ImageTokenDim,
            TextTokenCount = h.TextTokenCount, TextTokenDim = h.TextTokenDim,
        };
        if (textPooled && h.HasText) d.TextPooled = ReadFloats(handle, h.TextPooledOffset, (long)h.Rows * h.TextDim, h.DType, path);
        if (imageTokens)
        {
            if (!h.HasImageTokens) throw new InvalidOperationException($"{path}: this store holds no image tokens (embed with tokens to store them).");
            d.ImageTokens = ReadFloats(handle, h.ImageTokensOffset, (long)h.Images * h.ImageTokenCount * h.ImageTokenDim, h.DType, path);
            d.ImageTokenLengths = ReadInts(handle, h.ImageTokenLengthsOffset, h.Images, path);
        }
        if (textTokens)
        {
            if (!h.HasTextTokens) throw new InvalidOperationException($"{path}: this store holds no text tokens (embed with tokens to store them).");
            d.TextTokens = ReadFloats(handle, h.TextTokensOffset, (long)h.Rows * h.TextTokenCount * h.TextTokenDim, h.DType, path);
            d.TextTokenLengths = ReadInts(handle, h.TextTokenLengthsOffset, h.Rows, path);
        }
        if (meta)
        {
            var bytes = new byte[checked((int)h.MetaBytes)];
            ReadExactly(handle, h.MetaOffset, bytes, path);
            d.Meta = JsonSerializer.Deserialize<StoredRowInfo[]>(bytes, StoreJson.Options)
                ?? throw new InvalidDataException($"{path}: row metadata is missing.");
            if (d.Meta.Length != h.Rows) throw new InvalidDataException($"{path}: {d.Meta.Length} metadata rows, expected {h.Rows}.");
        }
        return d;
    }

    public static Header ReadHeader(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        var b = new byte[HeaderBytes];
        long length = RandomAccess.GetLength(handle);
        if (length < HeaderBytes || RandomAccess.Read(handle, b, 0) != HeaderBytes)
            throw new InvalidDataException($"{path}: too short for a shard header ({length} bytes).");
        if (BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan()) != Magic)
            throw new InvalidDataException($"{path}: not an MLNet.Align embedding shard (bad magic).");
        int I(int k) => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4 + 4 * k));
        if (I(0) != Version) throw new InvalidDataException($"{path}: shard format version {I(0)}, this library reads {Version}.");
        var h = new Header(I(1) == 1 ? EmbeddingDType.Float16 : EmbeddingDType.Float32, I(2), I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10),
            BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(48)));
        if (h.TotalBytes != length)
            throw new InvalidDataException($"{path}: {length} bytes on disk, the header describes {h.TotalBytes} (truncated or corrupt shard).");
        return h;
    }

    internal static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, Span<byte> into, string path)
    {
        int done = 0;
        while (done < into.Length)
        {
            int n = RandomAccess.Read(handle, into[done..], offset + done);
            if (n <= 0) throw new InvalidDataException($"{path}: unexpected end of file at byte {offset + done}.");
            done += n;
        }
    }

    internal static int[] ReadInts(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, int count, string path)
    {
        var r = new int[count];
        ReadExactly(handle, offset, MemoryMarshal.AsBytes(r.AsSpan()), path);
        return r;
    }

    private static float[] ReadFloats(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, long count, EmbeddingDType dtype, string path)
    {
        var r = new float[checked((int)count)];
        if (dtype == EmbeddingDType.Float32) { ReadExactly(handle, offset, MemoryMarshal.AsBytes(r.AsSpan()), path); return r; }
        const int chunk = 1 << 16;
        var half = new Half[Math.Min(chunk, Math.Max(1, r.Length))];
        for (int at = 0; at < r.Length; at += chunk)
        {
            int n = Math.Min(chunk, r.Length - at);
            ReadExactly(handle, offset + 2L * at, MemoryMarshal.AsBytes(half.AsSpan(0, n)), path);
            TensorPrimitives.ConvertToSingle(half.AsSpan(0, n), r.AsSpan(at, n));
        }
        return r;
    }
}

internal static class StoreJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new JsonStringEnumConverter() },
    };

    public static readonly JsonSerializerOptions Compact = new(Options) { WriteIndented = false };
}
