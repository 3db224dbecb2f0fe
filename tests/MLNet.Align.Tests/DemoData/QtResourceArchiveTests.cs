using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using MLNet.Align.Demo.Data;

namespace MLNet.Align.Tests.Datasets;

/// <summary>Writes Qt resource archives (version 2 or 3) in the documented format, for tests: a file per
/// (path, bytes, flag) with flag 0 (stored), 1 (zlib, 4-byte big-endian length prefix) or 4 (zstd: the bytes are
/// written as given, marked zstd).</summary>
internal static class RccWriter
{
    public const int HeaderSize = 20;

    /// <summary>The archive bytes and the offset of its tree.</summary>
    public static (byte[] Bytes, int TreeOffset) Write(IEnumerable<(string Path, byte[] Data, int Flag)> files, int version = 2)
    {
        // Directory tree from the paths.
        var root = new Node("", true);
        foreach (var (path, bytes, flag) in files)
        {
            var parts = path.Split('/');
            var dir = root;
            for (int i = 0; i < parts.Length - 1; i++)
            {
                var next = dir.Children.FirstOrDefault(c => c.Name == parts[i] && c.IsDir);
                if (next is null) { next = new Node(parts[i], true); dir.Children.Add(next); }
                dir = next;
            }
            dir.Children.Add(new Node(parts[^1], false) { Data = bytes, Flag = flag });
        }
        // Breadth-first numbering, so each directory's children are contiguous.
        var order = new List<Node> { root };
        for (int i = 0; i < order.Count; i++)
        {
            order[i].FirstChild = order.Count;
            order.AddRange(order[i].Children);
        }
        var names = new MemoryStream();
        var data = new MemoryStream();
        foreach (var n in order.Skip(1))
        {
            n.NameOffset = (int)names.Length;
            var nameBytes = Encoding.BigEndianUnicode.GetBytes(n.Name);
            names.Write(U16(n.Name.Length)); names.Write(U32(0x1234)); names.Write(nameBytes);
            if (n.IsDir) continue;
            n.DataOffset = (int)data.Length;
            byte[] stored = n.Data!;
            if (n.Flag == 1)
            {
                var z = new MemoryStream();
                z.Write(U32(n.Data!.Length));
                using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(n.Data);
                stored = z.ToArray();
            }
            data.Write(U32(stored.Length)); data.Write(stored);
        }
        int nodeSize = 22;
        int header = version >= 3 ? 24 : HeaderSize;
        int namesOffset = header, treeOffset = namesOffset + (int)names.Length, dataOffset = treeOffset + order.Count * nodeSize;
        var o = new MemoryStream();
        o.Write("qres"u8); o.Write(U32(version)); o.Write(U32(treeOffset)); o.Write(U32(dataOffset)); o.Write(U32(namesOffset));
        if (version >= 3) o.Write(U32(0));
        o.Write(names.ToArray());
        foreach (var n in order)
        {
            o.Write(U32(n.NameOffset));
            if (n.IsDir) { o.Write(U16(2)); o.Write(U32(n.Children.Count)); o.Write(U32(n.FirstChild)); }
            else { o.Write(U16(n.Flag)); o.Write(U16(0)); o.Write(U16(1)); o.Write(U32(n.DataOffset)); }
            o.Write(new byte[8]); // modification time
        }
        o.Write(data.ToArray());
        return (o.ToArray(), treeOffset);
    }

    private static byte[] U16(int v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)v); return b; }
    private static byte[] U32(int v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, (uint)v); return b; }

    private sealed class Node(string name, bool isDir)
    {
        public string Name { get; } = name;
        public bool IsDir { get; } = isDir;
        public List<Node> Children { get; } = [];
        public byte[]? Data { get; init; }
        public int Flag { get; init; }
        public int NameOffset { get; set; }
        public int DataOffset { get; set; }
        public int FirstChild { get; set; }
    }
}

public class QtResourceArchiveTests
{
    private static readonly byte[] Plain = "hello rcc"u8.ToArray();
    private static readonly byte[] Text = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("zlib compressed text. ", 40)));
    private static readonly byte[] Nested = [1, 2, 3, 250, 251];

    private static (byte[] Bytes, int Tree) Sample(int version = 2) => RccWriter.Write(
    [
        ("top.txt", Plain, 0),
        ("dir/z.txt", Text, 1),
        ("dir/sub/deep.bin", Nested, 0),
    ], version);

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void ReadsPlainZlibAndNestedFiles(int version)
    {
        var archive = QtResourceArchive.Read(Sample(version).Bytes, "sample.rcc");
        Assert.Equal(version, archive.Version);
        Assert.Equal(["top.txt", "dir/z.txt", "dir/sub/deep.bin"], archive.Entries.Select(e => e.Path));
        Assert.Equal(Plain, archive.ReadBytes(archive.Find("top.txt")!));
        var z = archive.Find("qrc:/dir/z.txt")!;
        Assert.Equal(QtResourceCompression.Zlib, z.Compression);
        Assert.True(z.StoredSize < Text.Length);
        Assert.Equal(Text, archive.ReadBytes(z));
        Assert.Equal(Nested, archive.ReadBytes(archive.Find("/dir/sub/deep.bin")!));
        Assert.Null(archive.Find("dir/missing.txt"));
    }

    [Fact]
    public void BadMagic_NamesArchiveAndOffset()
    {
        var bytes = Sample().Bytes;
        bytes[0] = (byte)'X';
        var e = Assert.Throws<QtResourceFormatException>(() => QtResourceArchive.Read(bytes, "broken.rcc"));
        Assert.Contains("broken.rcc", e.Message);
        Assert.Contains("bad magic at offset 0", e.Message);
    }

    [Fact]
    public void TruncatedTree_NamesTheOffset()
    {
        var (bytes, tree) = Sample();
        // Cut in the middle of the second tree node.
        var cut = bytes[..(tree + 22 + 10)];
        var e = Assert.Throws<QtResourceFormatException>(() => QtResourceArchive.Read(cut, "cut.rcc"));
        Assert.Contains("cut.rcc", e.Message);
        Assert.Contains($"truncated at offset {tree + 22}", e.Message);
        Assert.Contains("tree node 1", e.Message);
    }

    [Fact]
    public void TruncatedData_NamesTheFileAndOffset()
    {
        var bytes = Sample().Bytes;
        var cut = bytes[..^3]; // the last file's bytes are cut short
        var e = Assert.Throws<QtResourceFormatException>(() => QtResourceArchive.Read(cut, "short.rcc"));
        Assert.Contains("short.rcc: truncated at offset", e.Message);
        Assert.Contains("'dir/sub/deep.bin'", e.Message);
    }

    [Fact]
    public void UnsupportedVersion_IsReported()
    {
        var bytes = Sample().Bytes;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), 9);
        var e = Assert.Throws<QtResourceFormatException>(() => QtResourceArchive.Read(bytes, "v9.rcc"));
        Assert.Contains("version 9 at offset 4", e.Message);
    }

    [Fact]
    public void ZstdEntry_IsListedButNotDecoded()
    {
        var (bytes, _) = RccWriter.Write([("a.webp", [0x28, 0xB5, 0x2F, 0xFD, 0, 0], 4)]);
        var archive = QtResourceArchive.Read(bytes, "z.rcc");
        var entry = Assert.Single(archive.Entries);
        Assert.Equal(QtResourceCompression.Zstd, entry.Compression);
        var e = Assert.Throws<NotSupportedException>(() => archive.ReadBytes(entry));
        Assert.Contains("zstd", e.Message);
    }

    [Fact]
    public void CorruptZlib_NamesTheEntry()
    {
        var (bytes, _) = RccWriter.Write([("c.txt", Text, 1)]);
        var archive = QtResourceArchive.Read(bytes, "bad-zlib.rcc");
        // Damage the deflate data after the 4-byte length prefix and the 2-byte zlib header (the archive keeps the array).
        int start = (int)archive.Entries[0].DataOffset + 6;
        for (int i = start; i < start + 8; i++) bytes[i] ^= 0x5A;
        var e = Assert.ThrowsAny<IOException>(() => archive.ReadBytes(archive.Entries[0]));
        Assert.Contains("bad-zlib.rcc", e.Message);
        Assert.Contains("'c.txt'", e.Message);
    }

    [FactWhenInstalled(GComprisPairSource.DefaultRoot, GComprisPairSource.Package)]
    public void RealGComprisArchives_ParseAndUseNoZstd()
    {
        int files = 0, zlib = 0;
        foreach (var rcc in Directory.EnumerateFiles(GComprisPairSource.DefaultRoot, "*.rcc"))
        {
            var archive = QtResourceArchive.Open(rcc);
            files += archive.Entries.Count;
            zlib += archive.Entries.Count(e => e.Compression == QtResourceCompression.Zlib);
            Assert.DoesNotContain(archive.Entries, e => e.Compression == QtResourceCompression.Zstd);
        }
        Assert.True(files > 4000, $"{files} files"); // 4,861 in gcompris-qt-data 3.1
        Assert.True(zlib > 1000, $"{zlib} zlib files");
        var monuments = QtResourceArchive.Open(Path.Combine(GComprisPairSource.DefaultRoot, "explore_monuments.rcc"));
        string board = Encoding.UTF8.GetString(monuments.ReadBytes(monuments.Find("gcompris/src/activities/explore_monuments/resource/board/board2.qml")!));
        Assert.Contains("Golden Temple", board);
    }
}
