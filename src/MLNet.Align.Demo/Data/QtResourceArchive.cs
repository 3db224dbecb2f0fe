using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MLNet.Align.Demo.Data;

/// <summary>How a file's bytes are stored in a Qt resource archive (the node flags of Qt's rcc).</summary>
public enum QtResourceCompression
{
    /// <summary>Stored as is (flag 0).</summary>
    None,
    /// <summary>zlib (flag 1): a 4-byte big-endian uncompressed length, then a zlib stream.</summary>
    Zlib,
    /// <summary>Zstandard (flag 4). Not decoded here (no zstd decoder is among this project's packages).</summary>
    Zstd,
}

/// <summary>One file of a Qt resource archive.</summary>
/// <param name="Path">'/'-separated path from the archive root, without a leading '/' ("gcompris/src/.../a.webp").</param>
/// <param name="Compression">How the bytes are stored.</param>
/// <param name="DataOffset">Absolute offset in the archive of the stored bytes (after the 4-byte size).</param>
/// <param name="StoredSize">Stored (possibly compressed) size in bytes.</param>
public sealed record QtResourceEntry(string Path, QtResourceCompression Compression, long DataOffset, int StoredSize);

/// <summary>A Qt resource archive that is malformed: bad magic, unknown version, or a header, tree node, name or data
/// block that points past the end of the file. The message names the archive and the offset.</summary>
public sealed class QtResourceFormatException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>Reads binary Qt resource archives (<c>.rcc</c>, written by <c>rcc -binary</c>; e.g. GCompris's activities).
/// <para>Format (Qt's rcc.cpp, versions 1 to 3; all integers big-endian): header "qres", version u32, tree offset u32,
/// data offset u32, names offset u32 (version 3 adds a u32 of flags). The tree is an array of nodes, 14 bytes in
/// version 1 and 22 in versions 2 and 3 (an 8-byte modification time appended); node 0 is the root directory. A node is
/// name offset u32, flags u16, then for a directory (flag 2) child count u32 and index of the first child u32, or for a
/// file country u16, language u16 and data offset u32. A name (at names offset + name offset) is length u16, hash u32,
/// then length UTF-16BE code units. File data (at data offset + the node's data offset) is size u32 then the stored
/// bytes; flag 1 means zlib with a 4-byte big-endian uncompressed-length prefix, flag 4 means zstd.</para>
/// <para>The whole archive is read into memory (GCompris's largest is ~7 MB).</para></summary>
public sealed class QtResourceArchive
{
    /// <summary>Node flag: zlib-compressed file.</summary>
    public const int FlagCompressed = 1;
    /// <summary>Node flag: directory.</summary>
    public const int FlagDirectory = 2;
    /// <summary>Node flag: zstd-compressed file.</summary>
    public const int FlagCompressedZstd = 4;

    private readonly byte[] _bytes;

    private QtResourceArchive(string name, byte[] bytes, int version, IReadOnlyList<QtResourceEntry> entries)
    {
        Name = name; _bytes = bytes; Version = version; Entries = entries;
    }

    /// <summary>Archive name used in error messages (the file path when opened from a file).</summary>
    public string Name { get; }

    /// <summary>Format version (1, 2 or 3).</summary>
    public int Version { get; }

    /// <summary>Every file in the archive, in tree order (directories are not listed).</summary>
    public IReadOnlyList<QtResourceEntry> Entries { get; }

    /// <summary>Reads an archive file.</summary>
    /// <exception cref="QtResourceFormatException">The file is not a valid archive (message names file and offset).</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static QtResourceArchive Open(string path) => Read(File.ReadAllBytes(path), Path.GetFullPath(path));

    /// <summary>Parses an archive held in memory.</summary>
    /// <param name="bytes">The archive bytes (kept, not copied).</param>
    /// <param name="name">Name for error messages.</param>
    /// <exception cref="QtResourceFormatException">Bad magic, unsupported version, a cycle in the tree, or an offset past
    /// the end (message names the archive and the offset).</exception>
    public static QtResourceArchive Read(byte[] bytes, string name)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(name);
        Need(bytes, name, 0, 4, "the 'qres' magic");
        if (bytes[0] != 'q' || bytes[1] != 'r' || bytes[2] != 'e' || bytes[3] != 's')
            throw new QtResourceFormatException($"{name}: not a Qt resource archive: bad magic at offset 0 (expected 'qres', found {Convert.ToHexString(bytes, 0, 4)}).");
        Need(bytes, name, 4, 16, "the header");
        int version = checked((int)U32(bytes, 4));
        if (version is < 1 or > 3)
            throw new QtResourceFormatException($"{name}: unsupported Qt resource archive version {version} at offset 4 (expected 1, 2 or 3).");
        long tree = U32(bytes, 8), data = U32(bytes, 12), names = U32(bytes, 16);
        if (version >= 3) Need(bytes, name, 20, 4, "the version-3 flags");
        int nodeSize = version >= 2 ? 22 : 14;
        var entries = new List<QtResourceEntry>();
        var visited = new HashSet<long>();
        var stack = new Stack<(long Index, string Prefix)>();
        stack.Push((0, ""));
        while (stack.Count > 0)
        {
            var (index, prefix) = stack.Pop();
            if (!visited.Add(index)) throw new QtResourceFormatException($"{name}: tree node {index} (offset {tree + index * nodeSize}) is reached twice: the tree has a cycle.");
            long node = tree + index * nodeSize;
            Need(bytes, name, node, nodeSize, $"tree node {index}");
            int flags = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan((int)node + 4));
            string nodeName = index == 0 ? "" : ReadName(bytes, name, names, U32(bytes, node), index);
            string path = index == 0 ? "" : prefix + nodeName;
            if ((flags & FlagDirectory) != 0)
            {
                long count = U32(bytes, node + 6), first = U32(bytes, node + 10);
                // Children are pushed in reverse so that they are visited in stored order.
                for (long c = first + count - 1; c >= first; c--) stack.Push((c, path.Length == 0 ? "" : path + "/"));
            }
            else
            {
                long offset = data + U32(bytes, node + 10);
                Need(bytes, name, offset, 4, $"the size of '{path}'");
                long size = U32(bytes, offset);
                Need(bytes, name, offset + 4, size, $"the {size} data bytes of '{path}'");
                var compression = (flags & FlagCompressedZstd) != 0 ? QtResourceCompression.Zstd
                    : (flags & FlagCompressed) != 0 ? QtResourceCompression.Zlib : QtResourceCompression.None;
                entries.Add(new QtResourceEntry(path, compression, offset + 4, checked((int)size)));
            }
        }
        return new QtResourceArchive(name, bytes, version, entries);
    }

    /// <summary>The entry at a path ('/'-separated, with or without a leading '/' or "qrc:"), or null.</summary>
    public QtResourceEntry? Find(string path)
    {
        string p = path.StartsWith("qrc:", StringComparison.Ordinal) ? path[4..] : path;
        p = p.TrimStart('/');
        return Entries.FirstOrDefault(e => e.Path == p);
    }

    /// <summary>The file's bytes, decompressed.</summary>
    /// <exception cref="NotSupportedException">The entry is zstd-compressed (not decoded here).</exception>
    /// <exception cref="QtResourceFormatException">The zlib stream is corrupt or its length differs from the prefix.</exception>
    public byte[] ReadBytes(QtResourceEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var stored = _bytes.AsSpan(checked((int)entry.DataOffset), entry.StoredSize);
        switch (entry.Compression)
        {
            case QtResourceCompression.None:
                return stored.ToArray();
            case QtResourceCompression.Zstd:
                throw new NotSupportedException($"{Name}: '{entry.Path}' is zstd-compressed (flag 4); no zstd decoder is available.");
            default:
                if (entry.StoredSize < 4)
                    throw new QtResourceFormatException($"{Name}: '{entry.Path}' at offset {entry.DataOffset} is marked zlib but holds {entry.StoredSize} bytes (needs a 4-byte length prefix).");
                long expected = BinaryPrimitives.ReadUInt32BigEndian(stored);
                try
                {
                    using var input = new MemoryStream(_bytes, checked((int)entry.DataOffset + 4), entry.StoredSize - 4, writable: false);
                    using var z = new ZLibStream(input, CompressionMode.Decompress);
                    using var output = new MemoryStream(expected <= int.MaxValue ? (int)Math.Min(expected, 1 << 26) : 0);
                    z.CopyTo(output);
                    if (output.Length != expected)
                        throw new QtResourceFormatException($"{Name}: '{entry.Path}' at offset {entry.DataOffset}: zlib data inflates to {output.Length} bytes, the prefix says {expected}.");
                    return output.ToArray();
                }
                catch (InvalidDataException e)
                {
                    throw new QtResourceFormatException($"{Name}: '{entry.Path}' at offset {entry.DataOffset}: corrupt zlib data ({e.Message})", e);
                }
        }
    }

    private static string ReadName(byte[] bytes, string archive, long names, long nameOffset, long index)
    {
        long at = names + nameOffset;
        Need(bytes, archive, at, 6, $"the name of tree node {index}");
        int length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan((int)at));
        Need(bytes, archive, at + 6, 2L * length, $"the {length}-character name of tree node {index}");
        return Encoding.BigEndianUnicode.GetString(bytes, (int)at + 6, 2 * length);
    }

    private static long U32(byte[] bytes, long offset) => BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(checked((int)offset)));

    private static void Need(byte[] bytes, string archive, long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset + count > bytes.Length)
            throw new QtResourceFormatException($"{archive}: truncated at offset {offset}: {what} needs {count} bytes, the archive has {Math.Max(0, bytes.Length - offset)} left ({bytes.Length} bytes in all).");
    }
}
