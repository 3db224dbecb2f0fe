using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace MLNet.Align.Embeddings;

/// <summary>
/// A content digest of an embedding store that ignores its layout: SHA-256 over the rows sorted by their index in
/// the pairs file, each row contributing its index, image path, caption and the bytes of its pooled image and text
/// embeddings (fp32 after decoding). A merged store of partitions and a one-process store of the same request have
/// equal digests exactly when they hold the same rows with bit-identical embeddings.
/// </summary>
public static class EmbeddingStoreDigest
{
    /// <summary>Lower-case hex digest of <paramref name="store"/>; reads the whole store once (pooled parts only).</summary>
    /// <exception cref="InvalidDataException">A shard is corrupt.</exception>
    public static string Compute(EmbeddingStore store, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var rows = new List<(int Index, string Image, string? Caption, byte[] Bytes)>();
        for (int s = 0; s < store.Shards.Count; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var d = store.ReadShard(s, textPooled: true, meta: true);
            for (int r = 0; r < d.Rows; r++)
            {
                var img = MemoryMarshal.AsBytes(d.ImagePooled.AsSpan(d.ImageSlot[r] * d.ImageDim, d.ImageDim));
                var txt = d.TextPooled is null ? [] : MemoryMarshal.AsBytes(d.TextPooled.AsSpan(r * d.TextDim, d.TextDim));
                var bytes = new byte[img.Length + txt.Length];
                img.CopyTo(bytes); txt.CopyTo(bytes.AsSpan(img.Length));
                rows.Add((d.Meta![r].Index, d.Meta[r].Image, d.Meta[r].Caption, bytes));
            }
        }
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var row in rows.OrderBy(r => r.Index))
        {
            h.AppendData(System.Text.Encoding.UTF8.GetBytes($"{row.Index}\t{row.Image}\t{row.Caption}\n"));
            h.AppendData(row.Bytes);
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }
}
