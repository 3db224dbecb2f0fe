using System.Security.Cryptography;

using System.Text.Json.Serialization;
using MLNet.Align.Encoders;

namespace MLNet.Align.Embeddings;

/// <summary>Element type of stored embeddings. fp16 halves the size; values round to about 3 significant digits
/// (relative error &lt;= 2^-11 for normal values), which does not change cosine rankings in practice.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<EmbeddingDType>))]
public enum EmbeddingDType
{
    /// <summary>IEEE 754 single precision; round trips exactly.</summary>
    [JsonStringEnumMemberName("fp32")] Float32,
    /// <summary>IEEE 754 half precision (<see cref="System.Half"/>).</summary>
    [JsonStringEnumMemberName("fp16")] Float16,
}

/// <summary>
/// A deterministic partition of the input for scale-out: partition <see cref="Index"/> of <see cref="Count"/> holds
/// the images whose key hash (SHA-256 of the image path relative to the pairs file, '/'-separated) modulo Count equals
/// Index; all captions of an image go with it. Run one partition per batch-engine task (Kubernetes Indexed Job,
/// Slurm array, Azure Batch) and combine the outputs with <see cref="EmbeddingStore.Merge"/>.
/// </summary>
public sealed record ShardPartition(int Index, int Count)
{
    /// <summary>Parses "i/N" (0 &lt;= i &lt; N).</summary>
    /// <exception cref="FormatException">Not of the form i/N with 0 &lt;= i &lt; N.</exception>
    public static ShardPartition Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], out int i) || !int.TryParse(parts[1], out int n) || n < 1 || i < 0 || i >= n)
            throw new FormatException($"Expected a partition 'i/N' with 0 <= i < N (e.g. 0/4), got '{text}'.");
        return new ShardPartition(i, n);
    }

    /// <summary>Whether the item with this partition key belongs to this partition.</summary>
    public bool Contains(string key) => Of(key, Count) == Index;

    /// <summary>The partition (0..count-1) of a key.</summary>
    public static int Of(string key, int count)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key), hash);
        return (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hash) % (ulong)count);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Index}/{Count}";
}

/// <summary>
/// What an embedding store was computed from. Two requests with equal keys give equal stores, so a store is reused
/// only when its key equals the request's; any difference is refused with <see cref="EmbeddingStoreMismatchException"/>.
/// </summary>
/// <param name="ImageEncoderSha256">The image encoder's <see cref="EncoderIdentity.Sha256"/>.</param>
/// <param name="TextEncoderSha256">The text encoder's, or null for an image-only store.</param>
/// <param name="InputIdentity">SHA-256 over the pairs file bytes and the reading options (columns, delimiter). Image
/// files are assumed immutable: their bytes are not hashed (too costly at scale).</param>
/// <param name="DType">Stored element type.</param>
/// <param name="ImageTokens">Whether image tokens are stored.</param>
/// <param name="TextTokens">Whether text tokens are stored.</param>
/// <param name="ShardSize">Target rows per shard.</param>
/// <param name="Partition">"i/N" for a partition store, null for the whole input (also a merged store).</param>
public sealed record EmbeddingStoreKey(string ImageEncoderSha256, string? TextEncoderSha256, string InputIdentity,
    EmbeddingDType DType, bool ImageTokens, bool TextTokens, int ShardSize, string? Partition)
{
    /// <summary>Lower-case hex SHA-256 over all components and the store format version.</summary>
    [JsonIgnore]
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
        $"mlnet-align-embeddings/v{EmbeddingStore.FormatVersion}|image={ImageEncoderSha256}|text={TextEncoderSha256 ?? "-"}|input={InputIdentity}" +
        $"|dtype={(DType == EmbeddingDType.Float16 ? "fp16" : "fp32")}|imageTokens={ImageTokens}|textTokens={TextTokens}|shardSize={ShardSize}|partition={Partition ?? "-"}")));

    /// <summary>First 16 hex digits of <see cref="Hash"/>: a cache sub-folder name.</summary>
    [JsonIgnore]
    public string ShortHash => Hash[..16];

    /// <summary>Human-readable differences from <paramref name="other"/> (empty when equal).</summary>
    public IReadOnlyList<string> Differences(EmbeddingStoreKey other)
    {
        var d = new List<string>();
        void Cmp<T>(string name, T a, T b) { if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{name}: store has {a?.ToString() ?? "none"}, requested {b?.ToString() ?? "none"}"); }
        Cmp("image encoder SHA-256", ImageEncoderSha256, other.ImageEncoderSha256);
        Cmp("text encoder SHA-256", TextEncoderSha256, other.TextEncoderSha256);
        Cmp("input identity (pairs file bytes + options)", InputIdentity, other.InputIdentity);
        Cmp("dtype", DType, other.DType);
        Cmp("image tokens", ImageTokens, other.ImageTokens);
        Cmp("text tokens", TextTokens, other.TextTokens);
        Cmp("shard size", ShardSize, other.ShardSize);
        Cmp("partition", Partition, other.Partition);
        return d;
    }
}

/// <summary>Thrown when a store folder holds a store computed from something else than what is requested.</summary>
public sealed class EmbeddingStoreMismatchException(string message) : InvalidOperationException(message);

/// <summary>An input item that was not stored, and why.</summary>
/// <param name="Row">0-based data-row index in the pairs file.</param>
/// <param name="Line">1-based line in the pairs file.</param>
/// <param name="Column">The column at fault (image or caption column name).</param>
/// <param name="Image">Image path as written.</param>
/// <param name="Reason">Why it was skipped.</param>
public sealed record SkippedItem(int Row, int Line, string Column, string Image, string Reason);

/// <summary>One shard in the manifest.</summary>
public sealed class ShardEntry
{
    /// <summary>Position of the shard in the store's plan.</summary>
    public int Index { get; set; }
    /// <summary>File name inside the store folder.</summary>
    public string File { get; set; } = "";
    /// <summary>Store row of the shard's first row (rows are numbered across shards in shard order); null while an
    /// earlier shard is still missing in a partial store.</summary>
    public long? FirstRow { get; set; }
    /// <summary>Rows stored in the shard.</summary>
    public int Rows { get; set; }
    /// <summary>Distinct images stored in the shard.</summary>
    public int Images { get; set; }
    /// <summary>Input rows the shard covered (stored + skipped).</summary>
    public int InputRows { get; set; }
    /// <summary>File size in bytes.</summary>
    public long Bytes { get; set; }
    /// <summary>Lower-case hex SHA-256 of the file.</summary>
    public string Sha256 { get; set; } = "";
    /// <summary>Input items of this shard that were skipped.</summary>
    public List<SkippedItem> Skipped { get; set; } = [];
    /// <summary>Lower-case hex SHA-256 over the SHA-256 of each of the shard's image files (their bytes, in plan order;
    /// "missing" for an absent file): a re-run re-encodes the shard when an image changed in place. Null in stores
    /// written before it existed (such shards are re-encoded once).</summary>
    public string? ImagesSha256 { get; set; }
}

/// <summary>Where the stored rows came from.</summary>
public sealed class StoreInput
{
    /// <summary>Absolute path of the pairs file when the store was written (informational; not part of the key).</summary>
    public string PairsFile { get; set; } = "";
    /// <summary>SHA-256 of the pairs file bytes.</summary>
    public string PairsSha256 { get; set; } = "";
    /// <summary>Image column name.</summary>
    public string ImageColumn { get; set; } = "image";
    /// <summary>Caption column name, null for an image-only store.</summary>
    public string? CaptionColumn { get; set; }
    /// <summary>Names of the extra columns kept per row.</summary>
    public List<string> ExtraColumns { get; set; } = [];
    /// <summary>Data rows in the pairs file (all partitions).</summary>
    public int FileRows { get; set; }
    /// <summary>Data rows assigned to this store (its partition, or all).</summary>
    public int InputRows { get; set; }
}

/// <summary>Which tensors the store holds.</summary>
public sealed class StoreContents
{
    /// <summary>Pooled image embeddings [rows, Di] (always).</summary>
    public bool ImagePooled { get; set; } = true;
    /// <summary>Pooled text embeddings [rows, Dt] (absent in an image-only store).</summary>
    public bool TextPooled { get; set; }
    /// <summary>Image tokens [rows, T, dti].</summary>
    public bool ImageTokens { get; set; }
    /// <summary>Text tokens [rows, L, dtt] and lengths.</summary>
    public bool TextTokens { get; set; }
}

/// <summary>The store's <c>manifest.json</c>. Deterministic (no timestamps), so a resumed run writes the same bytes as
/// an uninterrupted one.</summary>
public sealed class EmbeddingStoreManifest
{
    /// <summary>Always "mlnet-align-embeddings".</summary>
    public string Format { get; set; } = "mlnet-align-embeddings";
    /// <summary>Store format version.</summary>
    public int FormatVersion { get; set; } = EmbeddingStore.FormatVersion;
    /// <summary>"partial" while encoding (resumable), "complete" when every planned shard is present.</summary>
    public string Status { get; set; } = "partial";
    /// <summary>"planned" (written by the pipeline; missing shards can be re-encoded) or "merged" (shards copied from
    /// partition stores; rebuild with merge).</summary>
    public string Layout { get; set; } = "planned";
    /// <summary><see cref="EmbeddingStoreKey.Hash"/>.</summary>
    public string KeyHash { get; set; } = "";
    /// <summary>The key's components.</summary>
    public EmbeddingStoreKey Key { get; set; } = null!;
    /// <summary>Image encoder identity.</summary>
    public EncoderIdentity ImageEncoder { get; set; } = null!;
    /// <summary>Text encoder identity, null for an image-only store.</summary>
    public EncoderIdentity? TextEncoder { get; set; }
    /// <summary>How to reopen the image encoder (complete options, file paths and SHA-256); null when it was built from
    /// bytes only or the store predates the record.</summary>
    public EncoderSource? ImageEncoderSource { get; set; }
    /// <summary>How to reopen the text encoder; null as above or for an image-only store.</summary>
    public EncoderSource? TextEncoderSource { get; set; }
    /// <summary>Input description.</summary>
    public StoreInput Input { get; set; } = new();
    /// <summary>Stored element type.</summary>
    public EmbeddingDType DType { get; set; }
    /// <summary>What is stored.</summary>
    public StoreContents Contents { get; set; } = new();
    /// <summary>Target rows per shard (an image's caption set is never split, so a shard can exceed it by one set).</summary>
    public int ShardSize { get; set; }
    /// <summary>Number of planned shards.</summary>
    public int ShardCount { get; set; }
    /// <summary>Stored rows (sum over present shards).</summary>
    public long Rows { get; set; }
    /// <summary>Distinct stored images.</summary>
    public long Images { get; set; }
    /// <summary>Skipped input items (sum over present shards).</summary>
    public long SkippedCount { get; set; }
    /// <summary>Present shards, by index.</summary>
    public List<ShardEntry> Shards { get; set; } = [];

    /// <summary>Recomputes row ranges and totals from <see cref="Shards"/>.</summary>
    internal void Recount()
    {
        Shards.Sort((a, b) => a.Index.CompareTo(b.Index));
        long row = 0;
        bool contiguous = true;
        for (int k = 0; k < Shards.Count; k++)
        {
            contiguous &= Shards[k].Index == k;
            Shards[k].FirstRow = contiguous ? row : null;
            row += Shards[k].Rows;
        }
        Rows = row;
        Images = Shards.Sum(s => (long)s.Images);
        SkippedCount = Shards.Sum(s => (long)s.Skipped.Count);
    }
}
