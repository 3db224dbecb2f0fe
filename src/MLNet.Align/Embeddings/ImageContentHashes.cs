using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MLNet.Align.Embeddings;

/// <summary>
/// Content identity of the images of a run: the SHA-256 of each file's bytes, so an image edited in place (same path)
/// is re-encoded instead of served stale. Re-hashing every image on every run would read the whole image set again, so
/// the hashes are remembered beside the store (<see cref="FileName"/>: SHA-256, size, last-write time and path per
/// image) and a file is re-hashed only when its size or last-write time differs from the remembered ones. Cost: a
/// warm re-run stats each image (no reads); a first run or a changed file reads the file once more (the OS cache
/// usually holds it, as the encoder reads it too). An edit that keeps both the size and the last-write time to the
/// tick (e.g. a tool that restores the timestamp) is not seen.
/// </summary>
internal sealed class ImageContentHashes
{
    /// <summary>The remembered hashes, one line per image: sha256 TAB bytes TAB last-write ticks (UTC) TAB full path.</summary>
    public const string FileName = "image-hashes.tsv";
    /// <summary>Content hash recorded for an image that does not exist (it is skipped; if it appears, the shard changes).</summary>
    public const string Missing = "missing";

    private readonly Dictionary<string, string> _hashes = new(StringComparer.Ordinal);
    private readonly List<string> _lines = [];

    /// <summary>Files hashed by this call (not taken from the remembered ones).</summary>
    public int Hashed { get; private set; }

    /// <summary>Content hash of <paramref name="path"/> (<see cref="Missing"/> when it is not a file).</summary>
    public string this[string path] => _hashes[path];

    /// <summary>Hashes <paramref name="paths"/> (full paths), reusing the hashes remembered in
    /// <paramref name="storeDirectory"/> where size and last-write time still match.</summary>
    public static ImageContentHashes Compute(IEnumerable<string> paths, string storeDirectory, CancellationToken ct)
    {
        var known = new Dictionary<string, (string Sha, long Size, long Ticks)>(StringComparer.Ordinal);
        string memo = Path.Combine(storeDirectory, FileName);
        if (File.Exists(memo))
            foreach (var line in File.ReadLines(memo))
            {
                var f = line.Split('\t', 4);
                if (f.Length == 4 && f[0].Length == 64 && long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out long size)
                    && long.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks))
                    known[f[3]] = (f[0], size, ticks);
            }
        var result = new ImageContentHashes();
        foreach (var path in paths)
        {
            if (result._hashes.ContainsKey(path)) continue;
            ct.ThrowIfCancellationRequested();
            var info = new FileInfo(path);
            string sha;
            if (!info.Exists) sha = Missing;
            else
            {
                long size = info.Length, ticks = info.LastWriteTimeUtc.Ticks;
                if (known.TryGetValue(path, out var k) && k.Size == size && k.Ticks == ticks) sha = k.Sha;
                else
                {
                    try
                    {
                        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
                        sha = Convert.ToHexStringLower(SHA256.HashData(stream));
                        result.Hashed++;
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        sha = Missing; // unreadable now: the encoder reports it; never remembered
                        result._hashes[path] = sha;
                        continue;
                    }
                }
                result._lines.Add(string.Create(CultureInfo.InvariantCulture, $"{sha}\t{size}\t{ticks}\t{path}"));
            }
            result._hashes[path] = sha;
        }
        return result;
    }

    /// <summary>SHA-256 over the content hashes of <paramref name="paths"/>, in order: a shard's image identity.</summary>
    public string Digest(IEnumerable<string> paths)
    {
        var sb = new StringBuilder();
        foreach (var p in paths) sb.Append(_hashes[p]).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>Remembers the hashes beside the store (atomically), when any was computed by this call.</summary>
    public void Save(string storeDirectory)
    {
        if (Hashed == 0 && File.Exists(Path.Combine(storeDirectory, FileName))) return;
        AtomicFile.WriteAllText(Path.Combine(storeDirectory, FileName), string.Join('\n', _lines) + (_lines.Count > 0 ? "\n" : ""));
    }
}
